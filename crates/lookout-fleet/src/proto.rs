//! The Prometheus remote-write 1.0 wire format: the `prometheus.WriteRequest` protobuf
//! (only the fields 1.0 senders fill: labels and float samples), snappy block-compressed.
//! Messages are declared by hand with `prost` (four small messages, no build-time protoc).

use prost::Message;

#[derive(Clone, PartialEq, Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TimeSeries {
    /// Sorted by name, `__name__` among them (the spec requires the order).
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// The HTTP body of one push: the request's protobuf, snappy block format (not framed).
pub fn encode_body(req: &WriteRequest) -> Result<Vec<u8>, snap::Error> {
    snap::raw::Encoder::new().compress_vec(&req.encode_to_vec())
}

/// The inverse of [`encode_body`] (the bench's receiver-side checks and tests).
pub fn decode_body(body: &[u8]) -> Result<WriteRequest, String> {
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| format!("snappy: {e}"))?;
    WriteRequest::decode(raw.as_slice()).map_err(|e| format!("protobuf: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_round_trips_and_matches_the_wire_layout() {
        let req = WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![Label {
                    name: "__name__".into(),
                    value: "up".into(),
                }],
                samples: vec![Sample {
                    value: 1.0,
                    timestamp: 1_700_000_000_000,
                }],
            }],
        };
        // Field 1 (timeseries), then its field 1 (label): tags 0x0a, 0x0a as protoc writes.
        let raw = req.encode_to_vec();
        assert_eq!(&raw[..1], &[0x0a]);
        assert_eq!(raw[2], 0x0a);
        let body = encode_body(&req).unwrap();
        assert_eq!(decode_body(&body).unwrap(), req);
    }
}
