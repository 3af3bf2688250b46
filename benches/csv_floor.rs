//! The floors for the CSV Map Run benchmark, with no engine at all. Both parse the same CSV rows
//! with the `csv` crate and build the same JSON per row (what ItemSelector produces):
//!
//! * `rows` writes that JSON as one line per row (~80 bytes a row);
//! * `records` does what the job must do for its output: it routes the row as the Choice does,
//!   builds the Pass output, and writes AWS's result record for it (`Transformation: NONE`, spec
//!   §3.3: ARN, name, Input/Output as JSON text, dates, ~720 bytes a row) into one JSON array.
//!
//! `cargo bench --bench csv_floor -- FILE OUT` prints one line per floor.

use std::io::{BufWriter, Write};
use std::time::Instant;

use serde::Serialize;
use serde_json::{json, Value};

// The same allocator as the `mapfleet` binary, so the ratio compares work, not allocators.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let (Some(input), Some(output)) = (args.first(), args.get(1)) else {
        eprintln!("usage: csv_floor FILE OUT");
        std::process::exit(2);
    };
    for (name, records) in [("rows", false), ("records", true)] {
        let t = Instant::now();
        let rows = match floor(input, output, records) {
            Ok(rows) => rows,
            Err(e) => {
                eprintln!("csv_floor: floor={name} failed on {input}: {e}");
                std::process::exit(1);
            }
        };
        let dt = t.elapsed().as_secs_f64();
        let bytes = std::fs::metadata(output).map(|m| m.len()).unwrap_or(0);
        println!(
            "csv_floor: floor={name} rows={rows} seconds={dt:.3} rows_per_s={:.0} bytes={bytes}",
            rows as f64 / dt
        );
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Record<'a> {
    execution_arn: &'a str,
    input: &'a str,
    input_details: Included,
    name: &'a str,
    output: &'a str,
    output_details: Included,
    redrive_count: u32,
    redrive_status: &'a str,
    redrive_status_reason: &'a str,
    start_date: &'a str,
    state_machine_arn: &'a str,
    status: &'a str,
    stop_date: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Included {
    included: bool,
}

/// Any failure, named by what failed (`Box<dyn Error>` carries the csv, JSON or I/O error).
type FloorResult<T> = Result<T, Box<dyn std::error::Error>>;

fn floor(input: &str, output: &str, records: bool) -> FloorResult<u64> {
    let mut reader = csv::Reader::from_path(input)?;
    let header: Vec<String> = reader.headers()?.iter().map(str::to_string).collect();
    let mut out = BufWriter::new(std::fs::File::create(output)?);
    let map_run = "arn:aws:states:us-east-1:123456789012:mapRun:csv-orders/orders:2a28cb98-bdcc-4845-8ad0-abe6d73eae89";
    let machine = "arn:aws:states:us-east-1:123456789012:stateMachine:csv-orders/orders";
    let mut rows = 0u64;
    let mut record = csv::StringRecord::new();
    let mut arn = String::new();
    let (mut now, mut now_ms) = (String::new(), i64::MIN);
    if records {
        out.write_all(b"[")?;
    }
    while reader.read_record(&mut record)? {
        let row: serde_json::Map<String, Value> = header
            .iter()
            .zip(record.iter())
            .map(|(h, f)| (h.clone(), Value::String(f.to_string())))
            .collect();
        let qty: Value = serde_json::from_str(row["quantity"].as_str().unwrap_or("0"))?;
        let shaped = json!({"row": rows, "id": row["order_id"], "qty": qty, "price": row["price"], "region": row["region"]});
        if !records {
            serde_json::to_writer(&mut out, &shaped)?;
            out.write_all(b"\n")?;
            rows += 1;
            continue;
        }
        let kind = if qty.as_f64().unwrap_or(0.0) >= 50.0 {
            "bulk"
        } else {
            "retail"
        };
        let result = json!({"id": shaped["id"], "kind": kind, "region": shaped["region"]});
        let input_text = serde_json::to_string(&shaped)?;
        let output_text = serde_json::to_string(&result)?;
        let name = mapfleet_core::maprun::child_name(map_run, rows);
        arn.clear();
        arn.push_str("arn:aws:states:us-east-1:123456789012:execution:csv-orders/orders:");
        arn.push_str(&name);
        // Dates are formatted once per millisecond, not once per row.
        let t = chrono::Utc::now();
        if t.timestamp_millis() != now_ms {
            now_ms = t.timestamp_millis();
            now = t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
        }
        if rows > 0 {
            out.write_all(b",")?;
        }
        let rec = Record {
            execution_arn: &arn,
            input: &input_text,
            input_details: Included { included: true },
            name: &name,
            output: &output_text,
            output_details: Included { included: true },
            redrive_count: 0,
            redrive_status: "NOT_REDRIVABLE",
            redrive_status_reason: "Execution is SUCCEEDED and cannot be redriven",
            start_date: &now,
            state_machine_arn: machine,
            status: "SUCCEEDED",
            stop_date: &now,
        };
        serde_json::to_writer(&mut out, &rec)?;
        rows += 1;
    }
    if records {
        out.write_all(b"]")?;
    }
    out.flush()?;
    Ok(rows)
}
