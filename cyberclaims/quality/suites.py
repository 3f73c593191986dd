"""The versioned Great Expectations suites of expectations/suites/, run in an ephemeral GX context over
pandas batches: failed expectations with their unexpected rows, and the bound a failure broke."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from cyberclaims.quality.profiles import jsonable

SUITES_DIR = Path(__file__).resolve().parents[2] / "expectations" / "suites"


class SuiteRunner:
    """The versioned suites of expectations/suites/, in an ephemeral GX context over pandas batches."""

    def __init__(self, suites_dir: Path = SUITES_DIR):
        import great_expectations as gx

        self._gx = gx
        self.context = gx.get_context(mode="ephemeral")
        self._source = self.context.data_sources.add_pandas("submissions")
        self.definitions: dict[tuple[str, frozenset[str]], object] = {}
        self.versions: dict[str, str] = {}
        self.docs: dict[str, dict] = {}
        for path in sorted(suites_dir.glob("*.json")):
            doc = json.loads(path.read_text(encoding="utf-8"))
            self.versions[doc["name"]] = doc["meta"]["version"]
            self.docs[doc["name"]] = doc
            self._definition(doc["name"], frozenset())

    def _definition(self, name: str, not_delivered: frozenset[str]):
        """The suite's validation definition without the REQUIRED_FIELD expectations of the columns an
        insurer declares not delivered (built once per suite and set of columns)."""
        key = (name, not_delivered)
        if key not in self.definitions:
            gx, doc = self._gx, self.docs[name]
            variant = name if not not_delivered else f"{name} without {', '.join(sorted(not_delivered))}"
            expectations = [
                e for e in doc["expectations"]
                if not ((e.get("meta") or {}).get("reason") == "REQUIRED_FIELD" and e["kwargs"].get("column") in not_delivered)
            ]
            suite = self.context.suites.add(gx.ExpectationSuite(**{**doc, "name": variant, "expectations": expectations}))
            batch = self._source.add_dataframe_asset(variant).add_batch_definition_whole_dataframe("new_submissions")
            self.definitions[key] = self.context.validation_definitions.add(
                gx.ValidationDefinition(name=variant, data=batch, suite=suite)
            )
        return self.definitions[key]

    def run(self, name: str, frame: pd.DataFrame, parameters: dict, index: list[str],
            not_delivered: frozenset[str] = frozenset()) -> list[dict]:
        """Failed expectations, each with its unexpected rows identified by the index columns.
        `not_delivered`: columns whose REQUIRED_FIELD expectations do not apply (the insurer's config
        declares them not delivered, so they are null on every row)."""
        if frame.empty:
            return []
        required = {e["kwargs"].get("column") for e in self.docs[name]["expectations"]
                    if (e.get("meta") or {}).get("reason") == "REQUIRED_FIELD"}
        result = self._definition(name, frozenset(not_delivered) & required).run(
            batch_parameters={"dataframe": frame},
            expectation_parameters=parameters,
            result_format={"result_format": "COMPLETE", "unexpected_index_column_names": index},
        )
        failures = []
        for r in result.results:
            _raise_on_exception(name, r)
            if r.success:
                continue
            config = r.expectation_config
            failures.append({
                "suite": name,
                "expectation": config.type,
                "kwargs": {k: v for k, v in config.kwargs.items() if k in ("column", "column_A", "column_B")},
                "reason": (config.meta or {}).get("reason", "EXPECTATION"),
                "describe": (config.meta or {}).get("describe", ""),
                "unexpected": r.result.get("unexpected_index_list") or [],
            })
        return failures


def _raise_on_exception(suite: str, result) -> None:
    info = result.exception_info or {}
    infos = [info] if "raised_exception" in info else list(info.values())
    for item in infos:
        if isinstance(item, dict) and item.get("raised_exception"):
            from cyberclaims.quality.gate import GateError  # quality.gate imports this module

            raise GateError(f"suite {suite}: {result.expectation_config.type} raised: {item.get('exception_message')}")


def threshold(runner: SuiteRunner, failure: dict, parameters: dict) -> dict:
    doc = runner.docs["submission"]
    for e in doc["expectations"]:
        if e["type"] == failure["expectation"] and e["kwargs"].get("column") == failure["kwargs"].get("column"):
            return {
                k: jsonable(parameters.get(v["$PARAMETER"]) if isinstance(v, dict) else v)
                for k, v in e["kwargs"].items() if k in ("min_value", "max_value", "value_set")
            }
    return {}
