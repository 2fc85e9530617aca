"""The config schema: loaded with the registries' names as enums, validated with every default filled in,
and its errors explained (the key, what is allowed, a suggestion)."""

from __future__ import annotations

import copy
import difflib
from pathlib import Path
from typing import Any, Mapping, Sequence

from ...depth.methods import METHODS
from ...recovery.registry import RECOVERIES

SCHEMA_PATH = Path(__file__).resolve().parents[4] / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """The configuration is invalid; the message names every offending key and what is allowed."""


def registries() -> dict[str, list[str]]:
    """The registered names a schema node marked ``x-registry: <name>`` allows: the similarity statistics,
    the sparse metrics and the sparse allocations."""
    from ...depth.statistics import STATISTICS
    from ...sparse.names import ALLOCATIONS, METRICS

    return {"statistics": list(STATISTICS), "metrics": list(METRICS), "allocations": list(ALLOCATIONS)}


def _fill_registries(node: Any, names: Mapping[str, list[str]]) -> None:
    """Give every node marked ``x-registry: <name>`` the ``enum`` of that registry's names (in place)."""
    if isinstance(node, dict):
        if "x-registry" in node:
            node["enum"] = list(names[node.pop("x-registry")])
        for value in node.values():
            _fill_registries(value, names)
    elif isinstance(node, list):
        for value in node:
            _fill_registries(value, names)


def load_schema(path: str | Path | None = None) -> dict:
    """The config schema, with ``methods`` built from the method registry (:data:`lorp.depth.methods.METHODS`):
    each method's parameters, bounds and defaults are declared there, once; and the enums of the similarity
    statistics and the sparse metrics and allocations from their registries (:func:`registries`)."""
    import yaml

    schema = yaml.safe_load(Path(path or SCHEMA_PATH).read_text(encoding="utf-8"))
    schema["properties"]["methods"]["properties"] = {name: m.schema() for name, m in METHODS.items()}
    schema["properties"]["recovery"]["properties"]["methods"]["properties"] = {
        name: r.schema() for name, r in RECOVERIES.items()}
    _fill_registries(schema, registries())
    return schema


def _validator_with_defaults(schema: dict):
    """A Draft 2020-12 validator that also fills in ``default`` values of absent properties."""
    from jsonschema import Draft202012Validator, validators

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for key, sub in properties.items():
                if "default" in sub and key not in instance:
                    instance[key] = copy.deepcopy(sub["default"])
        yield from Draft202012Validator.VALIDATORS["properties"](validator, properties, instance, schema)

    cls = validators.extend(Draft202012Validator, {"properties": set_defaults})
    return cls(schema)


REMOVED_KEYS = {
    ("checkpoints", "temporary"): "evaluations build each pruned model in memory from the prepared model and its "
                                  "plan, so no checkpoint is written unless checkpoints.export asks for it: remove "
                                  "the key (and list the checkpoints you want in checkpoints.export)",
}


"""Keys earlier versions accepted, with why they went and what to do instead."""


def validate_schema(config: dict, schema_path: str | Path | None = None) -> dict:
    """Check ``config`` against the JSON schema, filling in defaults in place; raise :class:`ConfigError`."""
    removed = [f"  {'.'.join(path)}: no longer a setting: {why}" for path, why in REMOVED_KEYS.items()
               if isinstance(config.get(path[0]), dict) and path[1] in config[path[0]]]
    if removed:
        raise ConfigError("invalid config:\n" + "\n".join(removed))
    validator = _validator_with_defaults(load_schema(schema_path))
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    # A bad value inside an entry also makes its known keys "unevaluated" (unevaluatedProperties): report
    # an unevaluated-properties error only for keys the entry does not declare at all.
    errors = [e for e in errors if e.validator != "unevaluatedProperties" or not isinstance(e.instance, dict)
              or any(k not in _allowed_keys(e.schema, validator.schema) for k in e.instance)]
    if errors:
        schema = validator.schema
        lines = []
        for err in errors:
            key = ".".join(str(p) for p in err.absolute_path) or "(top level)"
            lines.append(f"  {key}: {_explain(err, schema)}")
        raise ConfigError("invalid config:\n" + "\n".join(lines))
    return config


def did_you_mean(name: str, allowed: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for the allowed name closest to a near miss, else nothing."""
    close = difflib.get_close_matches(str(name), [str(a) for a in allowed], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _allowed_keys(node: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    """The property names a schema node (with its ``allOf`` and ``$ref`` parts) declares."""
    if "$ref" in node:
        node = schema["$defs"][node["$ref"].rsplit("/", 1)[1]]
    keys = list(node.get("properties", {}))
    for part in node.get("allOf", []):
        keys += [k for k in _allowed_keys(part, schema) if k not in keys]
    return keys


def _explain(err: Any, schema: Mapping[str, Any]) -> str:
    """A schema error as one line: a rejected key or value with the allowed ones and the closest of them."""
    if err.validator in ("additionalProperties", "unevaluatedProperties") and isinstance(err.instance, dict):
        allowed = _allowed_keys(err.schema, schema)
        unknown = [k for k in err.instance if k not in allowed]
        what = ("method" if list(err.absolute_path) == ["methods"] else
                "recovery" if list(err.absolute_path) == ["recovery", "methods"] else "key")
        parts = [f"unknown {what} {k!r}{did_you_mean(k, allowed)}" for k in unknown]
        return "; ".join(parts) + f"; allowed: {', '.join(allowed) or '(none)'}"
    if err.validator == "enum":
        return err.message + did_you_mean(err.instance, err.validator_value)
    if err.validator == "not" and list(err.absolute_path) == ["sensitivity", "variations"]:
        return (f"the variation name {err.instance!r} is a similarity statistic's, which names the views of "
                "similarity.compare; choose another name (the statistic itself goes inside: {statistic: ...})")
    return err.message
