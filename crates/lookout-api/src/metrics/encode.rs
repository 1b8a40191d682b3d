//! The two shapes every scrape-time collector writes: a family of gauges and a family of
//! counters, each a list of (labels, value) rows, through prometheus-client's typed encoders
//! (so both exposition formats, label escaping and the counter `_total` suffix come from
//! the library rather than from hand-written text).

use prometheus_client::encoding::{
    DescriptorEncoder, EncodeCounterValue, EncodeGaugeValue, EncodeLabelSet, NoLabelSet,
};
use prometheus_client::metrics::MetricType;

/// Labels of one row: names are fixed by lookout, values come from the snapshot.
pub type Labels<'a> = Vec<(&'static str, &'a str)>;

/// Writes one gauge family; a family with no rows is left out entirely, so a scrape never
/// shows a HELP line for figures this host does not have (e.g. a GPU field the driver lacks).
pub fn gauges<L: EncodeLabelSet, V: EncodeGaugeValue>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: &[(L, V)],
) -> Result<(), std::fmt::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in rows {
        family.encode_family(labels)?.encode_gauge(value)?;
    }
    Ok(())
}

/// Writes one counter family. `name` is without `_total`: the encoder adds it.
pub fn counters<L: EncodeLabelSet, V: EncodeCounterValue>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: &[(L, V)],
) -> Result<(), std::fmt::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in rows {
        family
            .encode_family(labels)?
            .encode_counter::<NoLabelSet, V, u64>(value, None)?;
    }
    Ok(())
}

/// One unlabelled gauge.
pub fn gauge<V: EncodeGaugeValue>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: V,
) -> Result<(), std::fmt::Error> {
    gauges(encoder, name, help, &[(Labels::new(), value)])
}

/// One unlabelled counter.
pub fn counter<V: EncodeCounterValue>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: V,
) -> Result<(), std::fmt::Error> {
    counters(encoder, name, help, &[(Labels::new(), value)])
}
