// SPDX-License-Identifier: Apache-2.0

// Package clickhouse talks to ClickHouse over its HTTP interface with
// plain net/http: queries, gzip-compressed RowBinary inserts, errors
// parsed into a typed Error, the server version, and kflow's schema (the
// DDL chosen by version, migrations recorded in a version table,
// retention by dropping partitions) with the row format of flow records.
//
// Two dialects: Debian 12's clickhouse-server 18.16 (the oldest kflow
// supports, and the one CI runs) has no IPv6 type, TTL or column codecs;
// from 21.8 on kflow uses them. The row format is the same for both.
package clickhouse
