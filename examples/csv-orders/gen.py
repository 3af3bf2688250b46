#!/usr/bin/env python3
"""Writes DATA/demo/orders.csv with N rows (default 1,000,000): python3 gen.py DATA [N]."""
import os
import sys

data = sys.argv[1] if len(sys.argv) > 1 else "data"
n = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
os.makedirs(os.path.join(data, "demo"), exist_ok=True)
regions = ["eu-west", "us-east", "ap-south", "sa-east"]
with open(os.path.join(data, "demo", "orders.csv"), "w") as f:
    f.write("order_id,quantity,price,region\n")
    for i in range(n):
        f.write(f"o-{i:07d},{(i * 7) % 100},{(i * 13) % 1000}.{i % 100:02d},{regions[i % 4]}\n")
print(f"wrote {n} rows to {data}/demo/orders.csv")
