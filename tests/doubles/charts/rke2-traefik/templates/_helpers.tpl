{{- define "rke2-traefik.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}-{{ .Release.Namespace }}
{{- end }}

{{/* Where an entry point's redirection goes: another entry point's exposed port, as upstream. */}}
{{- define "rke2-traefik.redirectTo" -}}
{{- $to := .to -}}
{{- if hasKey .ports $to -}}:{{ (get .ports $to).exposedPort }}{{- else -}}{{ $to }}{{- end -}}
{{- end }}
