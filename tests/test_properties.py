"""Property tests: arbitrary input never escapes as anything but the project's own answers."""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from project.configuration import ConfigError, load_config

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
entries = st.lists(
    st.fixed_dictionaries(
        {
            "name": st.sampled_from(["A", "POSTGRES_PORT", "FLASK_DEBUG", "FLASK_CONFIG", "bad name"])
            | st.text(max_size=8)
        },
        optional={"value": st.text(max_size=8) | json_values, "valueFrom": st.text(max_size=8), "x": json_values},
    ),
    max_size=5,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    document=json_values | entries,
    environ=st.dictionaries(st.sampled_from(["A", "POSTGRES_PORT"]), st.text(max_size=6)),
)
def test_loader_raises_only_config_errors(tmp_path, document, environ):
    (tmp_path / "fuzz.json").write_text(json.dumps(document))
    try:
        config = load_config("fuzz", environ=environ, config_dir=tmp_path)
    except ConfigError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert all(isinstance(v, str) for v in config.values())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=64))
def test_loader_survives_arbitrary_bytes(tmp_path, raw):
    (tmp_path / "bytes.json").write_bytes(raw)
    try:
        load_config("bytes", environ={}, config_dir=tmp_path)
    except ConfigError:
        pass
