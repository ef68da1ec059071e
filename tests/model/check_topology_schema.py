#!/usr/bin/env python3
"""Checks docs/schema/topology-v1.schema.json against the loader's view of the format.

The schema must be valid JSON and a valid draft 2020-12 schema; the reference example and
the bundled topologies must validate; the broken files whose mistake is structural (a type,
a range, a missing or unknown field) must not. Mistakes only the loader can see (names,
references, cycles, regexes, orderings) are out of a JSON Schema's reach.

Usage: check_topology_schema.py SOURCE_DIR. Exit 77 (ctest SKIP_RETURN_CODE) when the
jsonschema module is missing: apt-get install python3-jsonschema.
"""
import glob
import json
import os
import sys

SKIP = 77

# tests/data/bad files the schema must reject on its own.
STRUCTURAL_MISTAKES = [
    "distribution-field-of-other-kind", "empty-mix", "empty-parallel", "error-rate-negative",
    "integer-expected", "missing-required-field", "missing-version", "negative-bytes",
    "negative-count", "negative-distribution", "negative-sigma", "negative-timeout",
    "not-an-object", "percentile-out-of-range", "probability-out-of-range",
    "step-call-and-parallel", "unknown-distribution", "unknown-enum-value", "unknown-key",
    "unknown-key-no-suggestion", "wrong-type", "wrong-version", "zero-replicas", "zero-workers",
    "zone-without-hosts",
]


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def main():
    source_dir = sys.argv[1]
    schema = load(os.path.join(source_dir, "docs/schema/topology-v1.schema.json"))
    try:
        import jsonschema
    except ImportError:
        print("python3-jsonschema is not installed: schema checked as JSON only")
        return SKIP
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    failures = []
    good = [os.path.join(source_dir, "tests/data/topologies/all-features.json")]
    good += sorted(glob.glob(os.path.join(source_dir, "topologies/*.json")))
    for path in good:
        for error in validator.iter_errors(load(path)):
            failures.append(f"{path}: /{'/'.join(map(str, error.absolute_path))}: {error.message}")
    for name in STRUCTURAL_MISTAKES:
        path = os.path.join(source_dir, "tests/data/bad", name + ".json")
        if validator.is_valid(load(path)):
            failures.append(f"{path}: the schema accepts it, the loader does not")
    for failure in failures:
        print(failure)
    print(f"{len(good)} good files, {len(STRUCTURAL_MISTAKES)} broken ones, "
          f"{len(failures)} disagreements")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
