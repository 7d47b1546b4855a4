// SPDX-License-Identifier: Apache-2.0

// Package interop holds the interoperability tests of kflow's exporter
// against third-party collectors: nfcapd/nfdump, pmacct's nfacctd and
// Wireshark's IPFIX/NetFlow dissector (tshark). Each test runs the kflow
// binary inside a network namespace, sends traffic with known ground truth
// over a veth pair, and compares what the collector decoded with the truth,
// flow by flow and count by count. The package holds tests only; they need
// root and the collectors (tools/install-deps.sh installs them).
package interop
