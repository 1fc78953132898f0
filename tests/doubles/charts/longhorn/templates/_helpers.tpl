{{- /* The StorageClass longhorn-manager creates from the longhorn-storageclass ConfigMap. */ -}}
{{- define "longhorn.storageclass" }}
kind: StorageClass
apiVersion: storage.k8s.io/v1
metadata:
  name: longhorn
  annotations:
    storageclass.kubernetes.io/is-default-class: {{ .Values.persistence.defaultClass | quote }}
provisioner: driver.longhorn.io
allowVolumeExpansion: true
reclaimPolicy: "{{ .Values.persistence.reclaimPolicy }}"
volumeBindingMode: Immediate
parameters:
  numberOfReplicas: "{{ .Values.persistence.defaultClassReplicaCount }}"
  staleReplicaTimeout: "30"
  fromBackup: ""
  fsType: "{{ .Values.persistence.defaultFsType }}"
  dataLocality: {{ .Values.persistence.defaultDataLocality | quote }}
{{- end }}
