// SPDX-License-Identifier: Apache-2.0

package bpf

import "github.com/vishvananda/netlink"

func netlinkLinkByName(name string) (int, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return 0, err
	}
	return l.Attrs().Index, nil
}
