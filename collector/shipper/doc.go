// SPDX-License-Identifier: Apache-2.0

// Package shipper ships flow records from the collector's flow files into
// ClickHouse. The files are the write-ahead log: the shipper reads the
// whole blocks the writer has written (of the current files and of
// finished ones) from a persisted checkpoint, inserts them in large
// batches, and advances the checkpoint only once ClickHouse acknowledged.
// It runs on its own goroutine and never touches the receive path: a slow
// or dead ClickHouse only makes it fall behind.
//
// Inserts are idempotent. Every row carries the identity of the block it
// came from (exporter directory, file creation time, block offset and
// checksum). Before an insert the checkpoint records which blocks are
// being sent where; after a failure or a crash, the blocks that may have
// landed are looked up in ClickHouse (per block and day, with their row
// counts) and the ones there are not sent again. An insert of at most
// clickhouse.MaxInsertRows rows either lands whole per partition or not
// at all, so a block is either there with all its rows or absent.
package shipper
