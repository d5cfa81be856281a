//! The gauges read at scrape time from what the server already counts (commands and jobs
//! running, the audit queue): a `prometheus-client` collector over [`Sources`].

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::gauge::ConstGauge,
};

use super::Sources;

/// Renders each source as a gauge on every scrape.
#[derive(Debug)]
pub(super) struct SampledGauges {
    sources: Sources,
}

impl SampledGauges {
    pub(super) fn new(sources: Sources) -> Self {
        Self { sources }
    }

    /// Name (after the registry's `hostmcp_` prefix), help and value of each gauge.
    fn samples(&self) -> [(&'static str, &'static str, usize); 3] {
        [
            (
                "commands_running",
                "Commands running now (tool calls and background jobs).",
                (self.sources.commands_running)(),
            ),
            (
                "jobs_running",
                "Background jobs (job_start) still running.",
                (self.sources.jobs_running)(),
            ),
            (
                "audit_queue_depth",
                "Audit records waiting for the writer.",
                (self.sources.audit_queue_depth)(),
            ),
        ]
    }
}

impl Collector for SampledGauges {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        for (name, help, value) in self.samples() {
            let gauge = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
            let metric = encoder.encode_descriptor(name, help, None, gauge.metric_type())?;
            gauge.encode(metric)?;
        }
        Ok(())
    }
}
