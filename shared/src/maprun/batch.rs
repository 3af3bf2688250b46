//! ItemBatcher: groups items into child inputs `{"BatchInput": …, "Items": […]}`, greedily and
//! in order, within MaxItemsPerBatch and MaxInputBytesPerBatch (the serialized child input,
//! never above 256 KiB: spec §2.5).

use serde_json::{Map, Value};

use crate::engine::execution::{json_size, PAYLOAD_LIMIT};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BatchError {
    /// One item alone does not fit in a batch (or in a child input).
    #[error("The item at index {index} is {size} bytes, which does not fit in a batch of at most {limit} bytes")]
    ItemTooLarge {
        index: u64,
        size: usize,
        limit: usize,
    },
}

impl BatchError {
    pub fn error_name(&self) -> &'static str {
        "States.DataLimitExceeded"
    }
}

/// Batching limits, already resolved (Path and JSONata forms evaluated by the engine).
#[derive(Debug, Clone, PartialEq)]
pub struct BatchSpec {
    pub max_items: Option<u64>,
    pub max_bytes: Option<u64>,
    pub batch_input: Option<Value>,
}

/// Groups items as they stream by.
pub struct Batcher {
    spec: BatchSpec,
    limit_bytes: usize,
    base_bytes: usize,
    items: Vec<Value>,
    bytes: usize,
}

impl Batcher {
    pub fn new(spec: BatchSpec) -> Self {
        let limit_bytes = spec
            .max_bytes
            .map(|b| (b as usize).min(PAYLOAD_LIMIT))
            .unwrap_or(PAYLOAD_LIMIT);
        let base_bytes = json_size(&Self::wrap(&spec.batch_input, Vec::new()));
        Batcher {
            spec,
            limit_bytes,
            base_bytes,
            items: Vec::new(),
            bytes: 0,
        }
    }

    fn wrap(batch_input: &Option<Value>, items: Vec<Value>) -> Value {
        let mut m = Map::new();
        if let Some(bi) = batch_input {
            m.insert("BatchInput".into(), bi.clone());
        }
        m.insert("Items".into(), Value::Array(items));
        Value::Object(m)
    }

    fn size_with(&self, item_size: usize) -> usize {
        let comma = usize::from(!self.items.is_empty());
        self.base_bytes + self.bytes + comma + item_size
    }

    /// Adds item `index`; returns a full batch `(child input, item count)` when one closes.
    pub fn push(&mut self, index: u64, item: Value) -> Result<Option<(Value, u64)>, BatchError> {
        let size = json_size(&item);
        if self.base_bytes + size > self.limit_bytes {
            return Err(BatchError::ItemTooLarge {
                index,
                size,
                limit: self.limit_bytes,
            });
        }
        let mut closed = None;
        let full_items = self
            .spec
            .max_items
            .is_some_and(|m| self.items.len() as u64 >= m);
        if !self.items.is_empty() && (full_items || self.size_with(size) > self.limit_bytes) {
            closed = self.flush();
        }
        self.bytes += usize::from(!self.items.is_empty()) + size;
        self.items.push(item);
        if self
            .spec
            .max_items
            .is_some_and(|m| self.items.len() as u64 >= m)
        {
            // Close eagerly so a batch never waits for the next item.
            if closed.is_none() {
                closed = self.flush();
            }
        }
        Ok(closed)
    }

    /// Whether no item waits in an open batch.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The last, partial batch.
    pub fn flush(&mut self) -> Option<(Value, u64)> {
        if self.items.is_empty() {
            return None;
        }
        let items = std::mem::take(&mut self.items);
        let n = items.len() as u64;
        self.bytes = 0;
        Some((Self::wrap(&self.spec.batch_input, items), n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn batches(spec: BatchSpec, items: Vec<Value>) -> Result<Vec<(Value, u64)>, BatchError> {
        let mut b = Batcher::new(spec);
        let mut out = Vec::new();
        for (i, it) in items.into_iter().enumerate() {
            if let Some(x) = b.push(i as u64, it)? {
                out.push(x);
            }
        }
        out.extend(b.flush());
        Ok(out)
    }

    #[test]
    fn greedy_by_items() {
        let items: Vec<Value> = (0..1130).map(|i| json!(i)).collect();
        let out = batches(
            BatchSpec {
                max_items: Some(100),
                max_bytes: None,
                batch_input: None,
            },
            items,
        )
        .unwrap();
        assert_eq!(out.len(), 12);
        assert!(out[..11].iter().all(|(_, n)| *n == 100));
        assert_eq!(out[11].1, 30);
        assert_eq!(out[0].0["Items"][0], json!(0));
        assert!(out[0].0.get("BatchInput").is_none());
    }

    #[test]
    fn bytes_limit_counts_the_whole_child_input() {
        let spec = BatchSpec {
            max_items: None,
            max_bytes: Some(40),
            batch_input: Some(json!({"k": 1})),
        };
        // {"BatchInput":{"k":1},"Items":[]} is 33 bytes: room for "aa","bb" (4 + 1 + 4 = 9 > 7)?
        let out = batches(spec, vec![json!("aa"), json!("bb"), json!("cc")]).unwrap();
        for (b, _) in &out {
            assert!(json_size(b) <= 40, "{b}");
            assert_eq!(b["BatchInput"], json!({"k": 1}));
        }
        assert_eq!(out.iter().map(|(_, n)| n).sum::<u64>(), 3);
        let keys: Vec<&String> = out[0].0.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["BatchInput", "Items"]);
    }

    #[test]
    fn an_item_that_cannot_fit_is_named() {
        let spec = BatchSpec {
            max_items: Some(10),
            max_bytes: Some(20),
            batch_input: None,
        };
        let err = batches(
            spec,
            vec![json!("x"), json!("a very long string that does not fit")],
        )
        .unwrap_err();
        assert_eq!(
            err,
            BatchError::ItemTooLarge {
                index: 1,
                size: 38,
                limit: 20
            }
        );
        assert_eq!(err.error_name(), "States.DataLimitExceeded");
    }
}
