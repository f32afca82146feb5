//! Request validation: pure functions from wire requests to domain values. Every error
//! names the offending field.

use lookout_config::Limits;
use lookout_proto::v1 as pb;
use lookout_types::Expected;
use lookout_types::NewValue;
use lookout_types::Op;
use lookout_types::RequestId;

pub use lookout_wire::Invalid;
use lookout_wire::invalid;

pub fn key(field: &str, key: &[u8], limits: &Limits) -> Result<(), Invalid> {
    if key.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if key[0] == lookout_store::RESERVED_PREFIX {
        return Err(invalid(field, "keys starting with byte 0x00 are reserved for screening records"));
    }
    if key.len() > limits.max_key_bytes {
        return Err(invalid(field, format!("{} bytes exceeds max_key_bytes {}", key.len(), limits.max_key_bytes)));
    }
    Ok(())
}

pub fn value(field: &str, value: &[u8], limits: &Limits) -> Result<(), Invalid> {
    if value.len() > limits.max_value_bytes {
        return Err(invalid(
            field,
            format!("{} bytes exceeds max_value_bytes {}", value.len(), limits.max_value_bytes),
        ));
    }
    Ok(())
}

pub fn request_id(header: &Option<pb::WriteHeader>) -> Result<Option<RequestId>, Invalid> {
    let Some(h) = header else { return Ok(None) };
    match h.request_id.len() {
        0 => Ok(None),
        16 => {
            let mut id = [0u8; 16];
            id.copy_from_slice(&h.request_id);
            Ok(Some(RequestId(id)))
        }
        n => Err(invalid("header.request_id", format!("must be empty or 16 bytes, got {n}"))),
    }
}

pub fn put(req: &pb::PutRequest, limits: &Limits) -> Result<(Option<RequestId>, Op), Invalid> {
    key("key", &req.key, limits)?;
    value("value", &req.value, limits)?;
    Ok((request_id(&req.header)?, Op::Put { key: req.key.clone(), value: req.value.clone() }))
}

pub fn delete(req: &pb::DeleteRequest, limits: &Limits) -> Result<(Option<RequestId>, Op), Invalid> {
    key("key", &req.key, limits)?;
    Ok((request_id(&req.header)?, Op::Delete { key: req.key.clone() }))
}

pub fn compare_and_swap(
    req: &pb::CompareAndSwapRequest,
    limits: &Limits,
) -> Result<(Option<RequestId>, Op), Invalid> {
    use pb::compare_and_swap_request::Expected as E;
    key("key", &req.key, limits)?;
    let expected = match &req.expected {
        Some(E::ExpectedValue(v)) => {
            value("expected_value", v, limits)?;
            Expected::Value(v.clone())
        }
        Some(E::ExpectedVersion(0)) => Expected::Absent,
        Some(E::ExpectedVersion(v)) => Expected::Version(*v),
        Some(E::ExpectAbsent(true)) => Expected::Absent,
        Some(E::ExpectAbsent(false)) => return Err(invalid("expect_absent", "must be true when set")),
        None => return Err(invalid("expected", "one of expected_value, expected_version, expect_absent is required")),
    };
    let new = if req.delete {
        if !req.value.is_empty() {
            return Err(invalid("value", "must be empty when delete is true"));
        }
        NewValue::Delete
    } else {
        value("value", &req.value, limits)?;
        NewValue::Put(req.value.clone())
    };
    Ok((request_id(&req.header)?, Op::CompareAndSwap { key: req.key.clone(), expected, new }))
}

/// Validated read options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Read {
    pub consistency: pb::Consistency,
    /// 0 = no bound.
    pub max_staleness_ms: u64,
}

pub fn read(opts: &Option<pb::ReadOptions>) -> Result<Read, Invalid> {
    let Some(o) = opts else {
        return Ok(Read { consistency: pb::Consistency::Linearizable, max_staleness_ms: 0 });
    };
    let consistency = pb::Consistency::try_from(o.consistency)
        .map_err(|_| invalid("read.consistency", format!("unknown value {}", o.consistency)))?;
    if o.max_staleness_ms != 0 && consistency != pb::Consistency::Stale {
        return Err(invalid("read.max_staleness_ms", "only meaningful with CONSISTENCY_STALE"));
    }
    Ok(Read { consistency, max_staleness_ms: o.max_staleness_ms })
}

/// A validated range page request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangePage {
    pub prefix: Vec<u8>,
    pub start_after: Option<Vec<u8>>,
    pub limit: usize,
}

pub const DEFAULT_RANGE_LIMIT: u32 = 1000;

pub fn range(req: &pb::RangeRequest, limits: &Limits) -> Result<RangePage, Invalid> {
    if req.prefix.len() > limits.max_key_bytes {
        return Err(invalid("prefix", format!("{} bytes exceeds max_key_bytes {}", req.prefix.len(), limits.max_key_bytes)));
    }
    let limit = if req.limit == 0 { (DEFAULT_RANGE_LIMIT as usize).min(limits.max_range_limit) as u32 } else { req.limit };
    if limit as usize > limits.max_range_limit {
        return Err(invalid("limit", format!("{limit} exceeds max_range_limit {}", limits.max_range_limit)));
    }
    if req.prefix.first() == Some(&lookout_store::RESERVED_PREFIX) {
        return Err(invalid("prefix", "keys starting with byte 0x00 are reserved for screening records"));
    }
    if req.continuation.first() == Some(&lookout_store::RESERVED_PREFIX) {
        return Err(invalid("continuation", "not a continuation token of this prefix"));
    }
    let start_after = if req.continuation.is_empty() {
        // An empty prefix must not walk into the reserved 0x00 space: every reserved key
        // is 0x00 followed by an ASCII letter, so all sort before [0x00, 0xff].
        req.prefix.is_empty().then(|| vec![lookout_store::RESERVED_PREFIX, 0xff])
    } else {
        if !req.continuation.starts_with(&req.prefix) || req.continuation.len() > limits.max_key_bytes {
            return Err(invalid("continuation", "not a continuation token of this prefix"));
        }
        Some(req.continuation.clone())
    };
    Ok(RangePage { prefix: req.prefix.clone(), start_after, limit: limit as usize })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits { max_key_bytes: 8, max_value_bytes: 16, ..Limits::default() }
    }

    #[test]
    fn put_fields_are_named() {
        let l = limits();
        let ok = pb::PutRequest { header: None, key: b"k".to_vec(), value: b"v".to_vec() };
        assert!(put(&ok, &l).is_ok());
        let empty = pb::PutRequest { key: vec![], ..ok.clone() };
        assert_eq!(put(&empty, &l).unwrap_err().field, "key");
        let long_key = pb::PutRequest { key: vec![b'a'; 9], ..ok.clone() };
        assert_eq!(put(&long_key, &l).unwrap_err().field, "key");
        let long_val = pb::PutRequest { value: vec![0; 17], ..ok.clone() };
        assert_eq!(put(&long_val, &l).unwrap_err().field, "value");
        let bad_id = pb::PutRequest { header: Some(pb::WriteHeader { request_id: vec![1, 2, 3] }), ..ok };
        assert_eq!(put(&bad_id, &l).unwrap_err().field, "header.request_id");
    }

    #[test]
    fn read_rejects_unknown_enum() {
        let r = read(&Some(pb::ReadOptions { consistency: 42, max_staleness_ms: 0 }));
        assert_eq!(r.unwrap_err().field, "read.consistency");
        let r = read(&Some(pb::ReadOptions { consistency: 0, max_staleness_ms: 5 }));
        assert_eq!(r.unwrap_err().field, "read.max_staleness_ms");
        assert_eq!(read(&None).unwrap().consistency, pb::Consistency::Linearizable);
    }

    #[test]
    fn cas_requires_a_condition() {
        let l = limits();
        let req = pb::CompareAndSwapRequest { key: b"k".to_vec(), ..Default::default() };
        assert_eq!(compare_and_swap(&req, &l).unwrap_err().field, "expected");
        let req = pb::CompareAndSwapRequest {
            key: b"k".to_vec(),
            expected: Some(pb::compare_and_swap_request::Expected::ExpectedVersion(3)),
            delete: true,
            ..Default::default()
        };
        assert!(matches!(compare_and_swap(&req, &l).unwrap().1, Op::CompareAndSwap { new: NewValue::Delete, .. }));
    }

    #[test]
    fn range_limits_and_tokens() {
        let l = Limits { max_range_limit: 100, ..limits() };
        let req = pb::RangeRequest { prefix: b"a".to_vec(), limit: 101, ..Default::default() };
        assert_eq!(range(&req, &l).unwrap_err().field, "limit");
        let req = pb::RangeRequest { prefix: b"a".to_vec(), continuation: b"b1".to_vec(), ..Default::default() };
        assert_eq!(range(&req, &l).unwrap_err().field, "continuation");
        let req = pb::RangeRequest { prefix: b"a".to_vec(), continuation: b"a1".to_vec(), limit: 0, read: None };
        assert_eq!(range(&req, &l).unwrap().limit, 100);
    }
}
