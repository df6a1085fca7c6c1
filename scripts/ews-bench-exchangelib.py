#!/usr/bin/env python3
"""Times exchangelib (the compat suite's pinned EWS client) parsing the same responses as the
`ews` plugin's native bench, for comparison:

    cargo run --release -p ews --features bench --bin parse_bench -- 1000 target/ews-bench
    target/compat-venv/bin/python scripts/ews-bench-exchangelib.py target/ews-bench

For each response it parses the document (exchangelib.util.to_xml) and builds every item with
its own model (Contact / CalendarItem .from_xml), as exchangelib does for GetItem/FindItem/
SyncFolderItems answers, and prints items/s.
"""
import sys
import time
from pathlib import Path

from exchangelib.items import CalendarItem, Contact
from exchangelib.util import TNS, to_xml


def parse_and_map(data: bytes, cls) -> int:
    root = to_xml(data)
    n = 0
    for elem in root.iter(f"{{{TNS}}}{cls.ELEMENT_NAME}"):
        cls.from_xml(elem=elem, account=None)
        n += 1
    return n


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "target/ews-bench")
    rounds = 5
    print(f"{'response':<26} {'items':>8} {'bytes':>10} {'items/s':>12}")
    for path in sorted(folder.glob("*.xml")):
        cls = Contact if "contacts" in path.stem else CalendarItem
        data = path.read_bytes()
        count = parse_and_map(data, cls)
        start = time.perf_counter()
        total = sum(parse_and_map(data, cls) for _ in range(rounds))
        secs = time.perf_counter() - start
        print(f"{path.stem:<26} {count:>8} {len(data):>10} {total / secs:>12.0f}")


if __name__ == "__main__":
    main()
