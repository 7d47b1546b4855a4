CREATE DATABASE IF NOT EXISTS kflow;

CREATE TABLE IF NOT EXISTS kflow.schema_version (
    version UInt32,
    applied DateTime('UTC'),
    kflow String
) ENGINE = TinyLog;

CREATE TABLE IF NOT EXISTS kflow.flows (
    time DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
    flow_start DateTime('UTC') CODEC(Delta, ZSTD(1)),
    flow_start_ns UInt32,
    flow_end DateTime('UTC') CODEC(Delta, ZSTD(1)),
    flow_end_ns UInt32,
    exporter IPv6,
    observation_domain UInt32,
    ip_version UInt8,
    src IPv6,
    dst IPv6,
    next_hop IPv6,
    src_port UInt16,
    dst_port UInt16,
    proto UInt8,
    icmp_type UInt8,
    icmp_code UInt8,
    vlan UInt16,
    inner_vlan UInt16,
    in_if UInt32,
    out_if UInt32,
    direction UInt8,
    packets UInt64 CODEC(T64, ZSTD(1)),
    bytes UInt64 CODEC(T64, ZSTD(1)),
    tcp_flags UInt16,
    tos UInt8,
    min_ttl UInt8,
    max_ttl UInt8,
    end_reason UInt8,
    src_as UInt32,
    dst_as UInt32,
    src_mask UInt8,
    dst_mask UInt8,
    sampling_interval UInt32,
    block_id UInt64 CODEC(Delta, ZSTD(1)),
    file_slot DateTime('UTC') CODEC(Delta, ZSTD(1)),
    file LowCardinality(String),
    file_pos UInt64 CODEC(Delta, ZSTD(1)),
    cgroup_id UInt64,
    cgroup LowCardinality(String),
    unit LowCardinality(String),
    container LowCardinality(String),
    pod LowCardinality(String)
) ENGINE = MergeTree
PARTITION BY toDate(time)
ORDER BY (toStartOfFiveMinute(time), src, dst)
TTL time + INTERVAL 15 DAY
SETTINGS ttl_only_drop_parts = 1;

CREATE TABLE IF NOT EXISTS kflow.flows_1m (
    time DateTime('UTC'),
    end_bound DateTime('UTC'),
    exporter IPv6,
    observation_domain UInt32,
    in_if UInt32,
    out_if UInt32,
    direction UInt8,
    ip_version UInt8,
    proto UInt8,
    src_as UInt32,
    dst_as UInt32,
    packets UInt64,
    bytes UInt64,
    flows UInt64
) ENGINE = SummingMergeTree((packets, bytes, flows))
PARTITION BY toDate(time)
ORDER BY (time, end_bound, exporter, observation_domain, in_if, out_if, direction, ip_version, proto, src_as, dst_as)
TTL time + INTERVAL 7 DAY
SETTINGS ttl_only_drop_parts = 1;

CREATE MATERIALIZED VIEW IF NOT EXISTS kflow.flows_1m_mv TO kflow.flows_1m AS
SELECT toStartOfMinute(if(toUInt32(flow_start) = 0 AND flow_start_ns = 0, time, flow_start)) AS time, if(toUInt32(flow_start) = 0 AND flow_start_ns = 0, toDateTime(4102444800, 'UTC'), toStartOfMinute(flow_end) + 60 * (flow_end != toStartOfMinute(flow_end) OR flow_end_ns != 0)) AS end_bound, exporter, observation_domain, in_if, out_if, direction, ip_version, proto, src_as, dst_as,
    sum(packets) AS packets, sum(bytes) AS bytes, count() AS flows
FROM kflow.flows
GROUP BY time, end_bound, exporter, observation_domain, in_if, out_if, direction, ip_version, proto, src_as, dst_as;

CREATE TABLE IF NOT EXISTS kflow.flows_1h (
    time DateTime('UTC'),
    end_bound DateTime('UTC'),
    exporter IPv6,
    observation_domain UInt32,
    in_if UInt32,
    out_if UInt32,
    direction UInt8,
    ip_version UInt8,
    proto UInt8,
    src_as UInt32,
    dst_as UInt32,
    packets UInt64,
    bytes UInt64,
    flows UInt64
) ENGINE = SummingMergeTree((packets, bytes, flows))
PARTITION BY toYYYYMM(time)
ORDER BY (time, end_bound, exporter, observation_domain, in_if, out_if, direction, ip_version, proto, src_as, dst_as)
TTL time + INTERVAL 365 DAY
SETTINGS ttl_only_drop_parts = 1;

CREATE MATERIALIZED VIEW IF NOT EXISTS kflow.flows_1h_mv TO kflow.flows_1h AS
SELECT toStartOfHour(if(toUInt32(flow_start) = 0 AND flow_start_ns = 0, time, flow_start)) AS time, if(toUInt32(flow_start) = 0 AND flow_start_ns = 0, toDateTime(4102444800, 'UTC'), toStartOfHour(flow_end) + 3600 * (flow_end != toStartOfHour(flow_end) OR flow_end_ns != 0)) AS end_bound, exporter, observation_domain, in_if, out_if, direction, ip_version, proto, src_as, dst_as,
    sum(packets) AS packets, sum(bytes) AS bytes, count() AS flows
FROM kflow.flows
GROUP BY time, end_bound, exporter, observation_domain, in_if, out_if, direction, ip_version, proto, src_as, dst_as;
