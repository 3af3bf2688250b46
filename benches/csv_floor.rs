//! The floor for the CSV Map Run benchmark: parse the same CSV rows, build the same JSON per
//! row (what ItemSelector produces) and write them out as JSON lines — no engine at all.
//!
//! `cargo bench --bench csv_floor -- FILE OUT`

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::time::Instant;

use serde_json::{json, Value};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let (Some(input), Some(output)) = (args.first(), args.get(1)) else {
        eprintln!("usage: csv_floor FILE OUT");
        std::process::exit(2);
    };
    let t = Instant::now();
    let reader = BufReader::new(std::fs::File::open(input).expect("open input"));
    let mut out = BufWriter::new(std::fs::File::create(output).expect("create output"));
    let mut lines = reader.lines();
    let header: Vec<String> = lines
        .next()
        .expect("header")
        .expect("read")
        .split(',')
        .map(str::to_string)
        .collect();
    let mut rows = 0u64;
    for (i, line) in lines.enumerate() {
        let line = line.expect("read");
        let fields: Vec<&str> = line.split(',').collect();
        let row: serde_json::Map<String, Value> = header
            .iter()
            .zip(fields.iter())
            .map(|(h, f)| (h.clone(), Value::String((*f).to_string())))
            .collect();
        let shaped = json!({"row": i, "id": row["order_id"], "qty": row["quantity"], "price": row["price"], "region": row["region"]});
        serde_json::to_writer(&mut out, &shaped).expect("write");
        out.write_all(b"\n").expect("write");
        rows += 1;
    }
    out.flush().expect("flush");
    let dt = t.elapsed().as_secs_f64();
    println!(
        "csv_floor: rows={rows} seconds={dt:.3} rows_per_s={:.0}",
        rows as f64 / dt
    );
}
