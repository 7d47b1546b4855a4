// SPDX-License-Identifier: Apache-2.0

package query

import "github.com/kflow-dev/kflow/collector/flowfile"

// SummaryFields are the record fields a summary (flowfile.Summarizer)
// reads.
const SummaryFields = CounterFields | flowfile.FieldProto | flowfile.FieldExporter
