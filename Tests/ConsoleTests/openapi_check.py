#!/usr/bin/env python3
"""Checks recorded console API exchanges against Formats/api.yaml (OpenAPI 3.1).

usage: openapi_check.py api.yaml exchanges.jsonl
Each line: {"method", "path", "status", "contentType", "body"}. For each exchange the path must
match a documented path, the method an operation, the status a documented response, the content
type one the response declares, and the body its JSON Schema (draft 2020-12, as OpenAPI 3.1).
Also checks the spec itself is a valid 2020-12 schema set. Prints one line per failure and a
closing count; exits 1 on any failure.
"""
import json
import re
import sys

import jsonschema
import yaml


def template_regex(template):
    return re.compile("^" + re.sub(r"\{[^/]+\}", "[^/]+", template) + "$")


def main():
    spec = yaml.safe_load(open(sys.argv[1]))
    exchanges = [json.loads(line) for line in open(sys.argv[2]) if line.strip()]
    paths = [(template_regex(t), t) for t in spec["paths"]]
    # Literal segments win over templated ones (/jobs/{job} vs nothing here, but be exact).
    paths.sort(key=lambda p: p[1].count("{"))
    failures = []
    covered = set()
    for ex in exchanges:
        where = f'{ex["method"]} {ex["path"]} -> {ex["status"]}'
        path = ex["path"].split("?")[0]
        match = next((t for rx, t in paths if rx.match(path)), None)
        if match is None:
            failures.append(f"{where}: path not in the spec")
            continue
        operation = spec["paths"][match].get(ex["method"].lower())
        if operation is None:
            failures.append(f"{where}: method not in the spec for {match}")
            continue
        covered.add((ex["method"].upper(), match, str(ex["status"])))
        response = operation["responses"].get(str(ex["status"]))
        if response is None:
            failures.append(f"{where}: status not documented for {match}")
            continue
        if "$ref" in response:
            name = response["$ref"].split("/")[-1]
            response = spec["components"]["responses"][name]
        content = response.get("content")
        if not content:
            if ex["body"]:
                failures.append(f"{where}: body where the spec has none")
            continue
        media = (ex["contentType"] or "").split(";")[0].strip()
        if media not in content:
            failures.append(f"{where}: content type {media!r} not in {list(content)}")
            continue
        schema = dict(spec)
        schema["$ref"] = content[media]["schema"].get("$ref") or None
        if schema["$ref"] is None:
            # Inline schema: validate against it with the spec as the resolution root.
            schema = dict(spec)
            schema.update(content[media]["schema"])
        try:
            jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(
                json.loads(ex["body"]))
        except jsonschema.ValidationError as error:
            failures.append(f"{where}: {error.message} at {list(error.absolute_path)}")
        except json.JSONDecodeError as error:
            failures.append(f"{where}: body is not JSON: {error}")
    for failure in failures:
        print("FAIL", failure)
    operations = {(m.upper(), p) for p, item in spec["paths"].items() for m in item if m in ("get", "post", "delete", "put")}
    missing = sorted(operations - {(m, p) for m, p, _ in covered})
    for m, p in missing:
        print("UNCOVERED", m, p)
    print(f"openapi_check: {len(exchanges)} exchanges, {len(covered)} (operation, status) pairs, "
          f"{len(failures)} failures, {len(missing)} operations not exercised")
    sys.exit(1 if failures or missing else 0)


if __name__ == "__main__":
    main()
