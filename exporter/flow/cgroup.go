// SPDX-License-Identifier: Apache-2.0

package flow

import "strings"

// The names a cgroup path shows, derived in one place for every view
// (filters, statistics, JSON, flow top). A path is a record's Cgroup:
// below the cgroup v2 root, "/" separated. Recognised layouts:
//
//	/system.slice/nginx.service                        unit nginx.service
//	/user.slice/user-1000.slice/user@1000.service/...  unit user@1000.service
//	/system.slice/docker-<id>.scope                    docker (systemd driver): unit and container
//	/docker/<id>                                       docker (cgroupfs driver): container
//	/machine.slice/libpod-<id>.scope                   podman: unit and container
//	/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice/cri-containerd-<id>.scope
//	/kubepods/burstable/pod<uid>/<id>                  Kubernetes: pod and container (also crio-<id>.scope)
//
// where <id> is a container id of 64 hexadecimal digits and <uid> a pod
// UID (written with underscores in systemd slice names).

// CgroupNames are the names a cgroup path shows; empty when it shows none.
type CgroupNames struct {
	// Unit is the systemd unit of the system manager: the first element
	// of the path that is a service or a scope (user@1000.service for
	// everything a user's manager runs).
	Unit string
	// Container is the container id of the deepest element that holds
	// one (64 hexadecimal digits).
	Container string
	// Pod is the Kubernetes pod UID, with dashes.
	Pod string
}

// ParseCgroup returns the names cgroup path p shows.
func ParseCgroup(p string) CgroupNames {
	var n CgroupNames
	for p != "" {
		var el string
		el, p = nextElement(p)
		if el == "" {
			continue
		}
		if n.Unit == "" && (strings.HasSuffix(el, ".service") || strings.HasSuffix(el, ".scope")) {
			n.Unit = el
		}
		if id := containerID(el); id != "" {
			n.Container = id
		}
		if uid := podUID(el); uid != "" {
			n.Pod = uid
		}
	}
	return n
}

func nextElement(p string) (el, rest string) {
	p = strings.TrimLeft(p, "/")
	if i := strings.IndexByte(p, '/'); i >= 0 {
		return p[:i], p[i+1:]
	}
	return p, ""
}

// containerID returns the container id an element names: the element
// itself, or what follows the last dash of a scope ("docker-<id>.scope",
// "cri-containerd-<id>.scope", "crio-<id>.scope", "libpod-<id>.scope").
// Podman's monitor ("libpod-conmon-<id>.scope") is not the container.
func containerID(el string) string {
	if strings.Contains(el, "conmon") {
		return ""
	}
	el = strings.TrimSuffix(el, ".scope")
	if i := strings.LastIndexByte(el, '-'); i >= 0 {
		el = el[i+1:]
	}
	if len(el) != 64 || !isHex(el) {
		return ""
	}
	return el
}

// podUID returns the pod UID of a Kubernetes pod cgroup: "pod<uid>", or
// "kubepods-<qos>-pod<uid_with_underscores>.slice".
func podUID(el string) string {
	el = strings.TrimSuffix(el, ".slice")
	i := strings.LastIndex(el, "pod")
	if i < 0 || (i > 0 && el[i-1] != '-') {
		return ""
	}
	uid := strings.ReplaceAll(el[i+3:], "_", "-")
	if !isUUID(uid) {
		return ""
	}
	return uid
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// isUUID reports whether s is 8-4-4-4-12 lowercase hexadecimal digits.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if s[i] != '-' {
				return false
			}
		} else if !isHex(s[i : i+1]) {
			return false
		}
	}
	return true
}

// ShortContainerID is a container id as docker and podman print it: its
// first 12 digits.
func ShortContainerID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// AppName is the short name of what a cgroup path runs, as flow top
// shows it and IPFIX's applicationName (96) carries it: the short
// container id, else the unit, else the path's last element; "" for no
// path.
func (n CgroupNames) AppName(p string) string {
	switch {
	case n.Container != "":
		return ShortContainerID(n.Container)
	case n.Unit != "":
		return n.Unit
	}
	if i := strings.LastIndexByte(p, '/'); i >= 0 && i < len(p)-1 {
		return p[i+1:]
	}
	return p
}

// CgroupNames returns the names the record's cgroup path shows.
func (r *Record) CgroupNames() CgroupNames { return ParseCgroup(r.Cgroup) }
