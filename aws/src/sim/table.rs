//! DynamoDB for the simulation: the fleet's table in memory, each request counted with the
//! units DynamoDB would bill (a write unit per KB written, a read unit per 4 KB read with
//! strong consistency), modeled latency.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mapfleet_core::maprun::checkpoint::MapRunSummary;

use super::meter::{spend, Meter};
use crate::fleet::table::{FleetTable, TableError, Versioned};

#[derive(Default)]
struct Tables {
    runs: HashMap<String, Versioned>,
    /// By execution, then by start date and Map Run ARN (the listing's sort key).
    listings: HashMap<String, BTreeMap<(String, String), MapRunSummary>>,
    leases: HashMap<String, (String, Instant)>,
    executions: HashMap<String, String>,
}

pub struct MemoryTable {
    tables: Mutex<Tables>,
    meter: Arc<Meter>,
    latency: Duration,
}

/// DynamoDB's item size limit.
const ITEM_LIMIT: usize = 400 * 1024;
/// Key and attribute names of an item, about.
const OVERHEAD: usize = 100;

impl MemoryTable {
    pub fn new(meter: Arc<Meter>, latency: Duration) -> Self {
        MemoryTable {
            tables: Mutex::new(Tables::default()),
            meter,
            latency,
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Tables>, TableError> {
        spend(self.latency);
        self.tables.lock().map_err(|_| TableError::Service {
            operation: "simulated DynamoDB".into(),
            code: "InternalServerError".into(),
            message: "the table's lock is poisoned".into(),
        })
    }
}

impl FleetTable for MemoryTable {
    fn get_run(&self, map_run_arn: &str) -> Result<Option<Versioned>, TableError> {
        let t = self.lock()?;
        let v = t.runs.get(map_run_arn).cloned();
        self.meter
            .dynamodb_read(v.as_ref().map_or(0, |v| v.text.len() + OVERHEAD));
        Ok(v)
    }

    fn put_run(
        &self,
        map_run_arn: &str,
        text: &str,
        expected: Option<u64>,
    ) -> Result<u64, TableError> {
        let size = text.len() + map_run_arn.len() + OVERHEAD;
        if size > ITEM_LIMIT {
            return Err(TableError::TooLarge {
                key: format!("RUN#{map_run_arn}"),
                size,
            });
        }
        let mut t = self.lock()?;
        self.meter.dynamodb_write(size);
        let current = t.runs.get(map_run_arn).map(|v| v.version);
        if current != expected {
            return Err(TableError::VersionConflict {
                key: map_run_arn.to_string(),
                expected: expected.map_or("none".into(), |v| v.to_string()),
            });
        }
        let version = expected.unwrap_or(0) + 1;
        t.runs.insert(
            map_run_arn.to_string(),
            Versioned {
                version,
                text: text.to_string(),
            },
        );
        Ok(version)
    }

    fn put_listing(&self, run: &MapRunSummary) -> Result<(), TableError> {
        let mut t = self.lock()?;
        self.meter.dynamodb_write(
            run.map_run_arn.len() * 2
                + run.execution_arn.len() * 2
                + run.state_machine_arn.len()
                + OVERHEAD,
        );
        t.listings
            .entry(run.execution_arn.clone())
            .or_default()
            .insert(
                (run.start_date.clone(), run.map_run_arn.clone()),
                run.clone(),
            );
        Ok(())
    }

    fn list_runs(&self, execution_arn: &str) -> Result<Vec<MapRunSummary>, TableError> {
        let t = self.lock()?;
        let runs: Vec<MapRunSummary> = t
            .listings
            .get(execution_arn)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        self.meter.dynamodb_read(runs.len() * 400);
        Ok(runs)
    }

    fn acquire_lease(&self, name: &str, owner: &str, ttl: Duration) -> Result<bool, TableError> {
        let mut t = self.lock()?;
        self.meter
            .dynamodb_write(OVERHEAD + name.len() + owner.len());
        let now = Instant::now();
        let free = match t.leases.get(name) {
            None => true,
            Some((o, until)) => o == owner || *until < now,
        };
        if free {
            t.leases
                .insert(name.to_string(), (owner.to_string(), now + ttl));
        }
        Ok(free)
    }

    fn release_lease(&self, name: &str, owner: &str) -> Result<(), TableError> {
        let mut t = self.lock()?;
        self.meter.dynamodb_write(OVERHEAD + name.len());
        if t.leases.get(name).is_some_and(|(o, _)| o == owner) {
            t.leases.remove(name);
        }
        Ok(())
    }

    fn put_execution(&self, name: &str, snapshot: &str, _finished: bool) -> Result<(), TableError> {
        let mut t = self.lock()?;
        // Past an item, DynamoTable writes chunks of 350 KB and a head item.
        let chunks = snapshot.len().div_ceil(350 * 1024);
        if chunks > 1 {
            for _ in 0..chunks {
                self.meter.dynamodb_write(350 * 1024);
            }
        }
        self.meter
            .dynamodb_write(snapshot.len().min(350 * 1024) + OVERHEAD);
        t.executions.insert(name.to_string(), snapshot.to_string());
        Ok(())
    }

    fn get_execution(&self, name: &str) -> Result<Option<String>, TableError> {
        let t = self.lock()?;
        let v = t.executions.get(name).cloned();
        self.meter
            .dynamodb_read(v.as_ref().map_or(0, |s| s.len() + OVERHEAD));
        Ok(v)
    }
}
