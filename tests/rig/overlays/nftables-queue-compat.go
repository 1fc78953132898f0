// Stand-in for expr/queue.go of github.com/google/nftables v0.3.0, for the test rig only:
// tests/rig/build.sh swaps it in with `go build -overlay` when it builds kube-network-policies
// for the rig's real node, and nothing else is built with it.
//
// Why: the rig machine's kernel is built without CONFIG_NFT_QUEUE, so the kernel refuses a rule
// holding nftables' own queue expression (ENOENT). It has nft_compat and the xtables NFQUEUE
// target, though, and an nftables rule may carry that target as a "target" expression; it hands
// packets to the same netfilter queue. So this file keeps the package's Queue API and encodes a
// Queue as that target; `nft list ruleset` shows it as `queue num N bypass`.

package expr

import (
	"encoding/binary"

	"github.com/google/nftables/binaryutil"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

type QueueAttribute uint16

type QueueFlag uint16

// The package's exported constants, with their upstream values.
const (
	QueueNum   QueueAttribute = unix.NFTA_QUEUE_NUM
	QueueTotal QueueAttribute = unix.NFTA_QUEUE_TOTAL
	QueueFlags QueueAttribute = unix.NFTA_QUEUE_FLAGS

	QueueFlagBypass QueueFlag = unix.NFT_QUEUE_FLAG_BYPASS
	QueueFlagFanout QueueFlag = unix.NFT_QUEUE_FLAG_CPU_FANOUT
	QueueFlagMask   QueueFlag = unix.NFT_QUEUE_FLAG_MASK
)

// Queue hands packets to user space on netfilter queue Num (spread over Total queues from Num).
type Queue struct {
	Num   uint16
	Total uint16
	Flag  QueueFlag
}

// The xtables target and the layout of its data (linux/netfilter/xt_NFQUEUE.h): revision 3 takes
// struct xt_NFQ_info_v3 { __u16 queuenum; __u16 queues_total; __u16 flags; } in host byte order,
// which xtables pads to 8 bytes.
const (
	nfqueueTarget   = "NFQUEUE"
	nfqueueRevision = 3
	nfqueueInfoLen  = 8

	xtNFQFlagBypass    = 0x01
	xtNFQFlagCPUFanout = 0x02
)

func (e *Queue) marshal(fam byte) ([]byte, error) {
	data, err := e.marshalData(fam)
	if err != nil {
		return nil, err
	}
	return netlink.MarshalAttributes([]netlink.Attribute{
		{Type: unix.NFTA_EXPR_NAME, Data: []byte("target\x00")},
		{Type: unix.NLA_F_NESTED | unix.NFTA_EXPR_DATA, Data: data},
	})
}

func (e *Queue) marshalData(fam byte) ([]byte, error) {
	total := e.Total
	if total == 0 {
		total = 1 // one queue, as nftables' own queue expression defaults to
	}
	var flags uint16
	if e.Flag&QueueFlagBypass != 0 {
		flags |= xtNFQFlagBypass
	}
	if e.Flag&QueueFlagFanout != 0 {
		flags |= xtNFQFlagCPUFanout
	}
	info := make([]byte, nfqueueInfoLen)
	copy(info[0:], binaryutil.NativeEndian.PutUint16(e.Num))
	copy(info[2:], binaryutil.NativeEndian.PutUint16(total))
	copy(info[4:], binaryutil.NativeEndian.PutUint16(flags))
	return netlink.MarshalAttributes([]netlink.Attribute{
		{Type: unix.NFTA_TARGET_NAME, Data: []byte(nfqueueTarget + "\x00")},
		{Type: unix.NFTA_TARGET_REV, Data: binaryutil.BigEndian.PutUint32(nfqueueRevision)},
		{Type: unix.NFTA_TARGET_INFO, Data: info},
	})
}

// The library decodes a rule's "queue" expression into a Queue (nftables' own attributes, which a
// kernel with NFT_QUEUE reports); the compat target written above reads back as an expr.Target.
func (e *Queue) unmarshal(fam byte, data []byte) error {
	ad, err := netlink.NewAttributeDecoder(data)
	if err != nil {
		return err
	}
	ad.ByteOrder = binary.BigEndian
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_QUEUE_NUM:
			e.Num = ad.Uint16()
		case unix.NFTA_QUEUE_TOTAL:
			e.Total = ad.Uint16()
		case unix.NFTA_QUEUE_FLAGS:
			e.Flag = QueueFlag(ad.Uint16())
		}
	}
	return ad.Err()
}
