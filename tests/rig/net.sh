# shellcheck shell=bash
# shellcheck disable=SC2034  # the scripts that source this file use these
# The network plan of one rig cluster, shared by cluster.sh (apiserver arguments) and node.sh
# (real nodes). Real nodes live in a network namespace of the cluster's own; pod and Service
# ranges exist only there. The host reaches that namespace through one veth pair, and only to
# talk to kubelets and pods; the namespace reaches the host's loopback-only services (API
# server, image registry) through socat forwarders over Unix sockets, never over the veth.
# Each cluster gets its own index, so the main job's cluster and the tests' can run side by side.
# Expects NAME (the cluster name) to be set.

# 20..219 from the name; CTI_RIG_NET_INDEX overrides it when two names collide.
RIG_NET_INDEX="${CTI_RIG_NET_INDEX:-$(($(printf %s "$NAME" | cksum | cut -d' ' -f1) % 200 + 20))}"
RIG_NETNS="cti-rig-$NAME"
# Loopback ports of the control plane (cluster.sh): eight per cluster, below the kernel's
# ephemeral range, so neither another cluster nor an outgoing connection holds them.
RIG_PORT_BASE=$((22000 + RIG_NET_INDEX * 8))
# veth ends: host side and node side (interface names are at most 15 characters).
RIG_VETH_HOST="ctirig${RIG_NET_INDEX}h"
RIG_VETH_NODE="ctirig${RIG_NET_INDEX}n"
RIG_HOST_IP="10.254.$RIG_NET_INDEX.1"
RIG_NODE_IP="10.254.$RIG_NET_INDEX.2"
RIG_POD_CIDR="10.244.$RIG_NET_INDEX.0/24"
RIG_POD_GATEWAY="10.244.$RIG_NET_INDEX.1"
RIG_SERVICE_CIDR="10.96.$RIG_NET_INDEX.0/24"
# The first address of the Service range is the `kubernetes` Service; .10 is CoreDNS, as on RKE2.
RIG_API_SERVICE_IP="10.96.$RIG_NET_INDEX.1"
RIG_DNS_IP="10.96.$RIG_NET_INDEX.10"
# Label and taint of real nodes: only pods that select and tolerate them run for real.
RIG_REAL_NODE_KEY="cti.misp-platform/real-node"
