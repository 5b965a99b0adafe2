"""The config loader: precedence, secrets, and one clear sentence for every mistake."""

import json

import pytest

from project.configuration import ConfigError, as_bool, available_configs, check_configs, config_name, load_config


def write(tmp_path, name, entries):
    path = tmp_path / f"{name}.json"
    path.write_text(entries if isinstance(entries, str) else json.dumps(entries))
    return path


@pytest.fixture
def config_dir(tmp_path):
    write(
        tmp_path, "development", [{"name": "POSTGRES_DB", "value": "app"}, {"name": "SECRET_KEY", "valueFrom": "arn:x"}]
    )
    return tmp_path


def load(config_dir, name="development", environ=None, **kw):
    return load_config(name, environ=environ or {}, config_dir=config_dir, **kw)


def test_values_come_from_the_file(config_dir):
    config = load(config_dir, environ={"SECRET_KEY": "s3"})
    assert config["POSTGRES_DB"] == "app"
    assert config.entry("POSTGRES_DB").source == "file"


def test_environment_overrides_a_file_value(config_dir):
    config = load(config_dir, environ={"POSTGRES_DB": "other", "SECRET_KEY": "s3"})
    assert config["POSTGRES_DB"] == "other"
    assert config.entry("POSTGRES_DB").source == "environment"


def test_secret_comes_from_the_environment_variable_of_its_name(config_dir):
    config = load(config_dir, environ={"SECRET_KEY": "s3"})
    assert config["SECRET_KEY"] == "s3"
    assert config.entry("SECRET_KEY").secret


def test_unset_secret_names_the_variable(config_dir):
    with pytest.raises(ConfigError, match=r"entry 2 \(SECRET_KEY\) is a secret .* SECRET_KEY is not set"):
        load(config_dir)


def test_unset_secret_is_allowed_when_describing(config_dir):
    config = load(config_dir, require_secrets=False)
    assert "SECRET_KEY" not in config
    assert config.entry("SECRET_KEY").source == "unset"


def test_application_config_picks_the_file():
    assert config_name({"APPLICATION_CONFIG": "production"}) == "production"
    assert config_name({}) == "development"


def test_missing_file_lists_the_available_configs(config_dir):
    write(config_dir, "production", [])
    with pytest.raises(ConfigError, match=r"no config 'nope'.*available configs: development, production\."):
        load(config_dir, "nope")


def test_config_name_with_a_path_is_refused(config_dir):
    with pytest.raises(ConfigError, match="not a config name"):
        load(config_dir, "../development")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[{"name": "A", "value": "1"},\n  {"name": }]', r"invalid JSON at line 2, column 12"),
        ('{"name": "A"}', r"must hold a JSON list .* not a JSON object"),
        ('["A"]', r"entry 1 must be an object .* not a JSON string"),
        ('[{"value": "1"}]', r"entry 1 has no 'name'"),
        ('[{"name": "A B", "value": "1"}]', r"entry 1: 'name' must be an environment variable name"),
        ('[{"name": "A"}]', r"entry 1 \(A\) has neither 'value' nor 'valueFrom'"),
        ('[{"name": "A", "value": "1", "valueFrom": "x"}]', r"has both 'value' and 'valueFrom'"),
        (
            '[{"name": "A", "value": 5432}]',
            r"'value' must be a string, as ECS requires, not a JSON number \(write \"5432\"\)",
        ),
        ('[{"name": "A", "valueFrom": ""}]', r"'valueFrom' is empty"),
        ('[{"name": "A", "value": "1", "extra": 1}]', r"unknown key 'extra'"),
        (
            '[{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]',
            r"entry 2 \(A\) repeats the name 'A' of entry 1",
        ),
        (
            '[{"name": "A", "value": "1"}, {"name": "A", "valueFrom": "arn:x"}]',
            r"entry 2 \(A\) repeats the name 'A' of entry 1",
        ),
        (
            '[{"name": "A", "valueFrom": "arn:x"}, {"name": "B", "value": "1"}, {"name": "A", "value": "2"}]',
            r"entry 3 \(A\) repeats the name 'A' of entry 1",
        ),
        (
            '[{"name": "A", "valueFrom": "arn:x"}, {"name": "A", "valueFrom": "arn:y"}]',
            r"entry 2 \(A\) repeats the name 'A' of entry 1",
        ),
        ('[{"name": "POSTGRES_PORT", "value": "abc"}]', r"'abc' is not valid; POSTGRES_PORT is a whole number from 0"),
        ('[{"name": "FLASK_DEBUG", "value": "maybe"}]', r"FLASK_DEBUG is \"true\" or \"false\""),
        ('[{"name": "DEBUG", "value": "no way"}]', r"DEBUG is \"true\" or \"false\""),
        ('[{"name": "FLASK_CONFIG", "value": "staging"}]', r"FLASK_CONFIG is one of development, testing, production"),
    ],
)
def test_bad_file_gets_one_sentence_naming_file_and_entry(tmp_path, text, message):
    write(tmp_path, "broken", text)
    with pytest.raises(ConfigError, match=message) as info:
        load(tmp_path, "broken")
    assert str(info.value).startswith(str(tmp_path / "broken.json")) or "broken.json" in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_value_from_the_environment_names_the_variable(tmp_path):
    write(tmp_path, "dev", [{"name": "POSTGRES_PORT", "value": "5432"}])
    with pytest.raises(ConfigError, match=r"from the environment variable POSTGRES_PORT: 'x' is not valid"):
        load(tmp_path, "dev", environ={"POSTGRES_PORT": "x"})


def test_replace_overrides_and_adds(config_dir):
    config = load(config_dir, environ={"SECRET_KEY": "s"}).replace(POSTGRES_DB="x", EXTRA="1")
    assert config["POSTGRES_DB"] == "x" and config["EXTRA"] == "1"
    assert config.entry("POSTGRES_DB").source == "override"
    assert config.environ()["APPLICATION_CONFIG"] == "development"


def test_check_configs_reports_names_missing_from_another_config(tmp_path):
    write(tmp_path, "a", [{"name": "X", "value": "1"}, {"name": "Y", "value": "1"}])
    write(tmp_path, "b", [{"name": "X", "value": "1"}])
    write(tmp_path, "c", "[")
    errors, warnings = check_configs(tmp_path)
    assert len(errors) == 1 and "c.json: invalid JSON" in errors[0]
    assert warnings == ["config/b.json has no Y, which a define(s)."]


def test_check_configs_on_an_empty_folder_is_an_error(tmp_path):
    errors, _ = check_configs(tmp_path)
    assert errors and "holds no config file" in errors[0]


def test_shipped_configs_are_valid_and_consistent():
    errors, warnings = check_configs()
    assert errors == [] and warnings == []
    assert {"development", "testing", "production"} <= set(available_configs())


def test_production_keeps_secrets_out_of_the_file():
    config = load_config("production", environ={}, require_secrets=False)
    assert config.entry("SECRET_KEY").secret and config.entry("POSTGRES_PASSWORD").secret


def test_as_bool():
    assert as_bool("True") and as_bool("1") and not as_bool("false") and not as_bool("no")


def test_module_check_command_reports_valid_files(capsys):
    from project.configuration import main

    assert main(["check"]) == 0
    assert "3 config files valid" in capsys.readouterr().out


def test_module_show_command_masks_secrets(capsys, monkeypatch):
    from project.configuration import main

    monkeypatch.setenv("SECRET_KEY", "do-not-print-me")
    assert main(["show", "production"]) == 0
    out = capsys.readouterr().out
    assert "SECRET_KEY=********" in out and "do-not-print-me" not in out


def test_module_command_errors_exit_2(capsys):
    from project.configuration import main

    assert main(["show", "nope"]) == 2
    assert "no config 'nope'" in capsys.readouterr().err
    assert main(["frobnicate"]) == 2


@pytest.mark.parametrize(
    ("text", "ending"),
    [
        ("[true]", "not a JSON boolean."),
        ("[null]", "not a JSON null."),
        ("[[1]]", "not a JSON list."),
        ("[1.5]", "not a JSON number."),
        ('"A"', "not a JSON string."),
        ('[{"name": true, "value": "1"}]', "(letters, digits, underscores), got true."),
        ('[{"name": ["A"], "value": "1"}]', '(letters, digits, underscores), got ["A"].'),
        ('[{"name": "POSTGRES_PORT", "value": "' + "9" * 58 + '"}]', f"'{'9' * 58}' is not valid; POSTGRES_PORT"),
        ('[{"name": "POSTGRES_PORT", "value": "' + "9" * 59 + '"}]', f"'{'9' * 56}... is not valid; POSTGRES_PORT"),
    ],
)
def test_mistakes_show_the_json_type_and_value_as_written(tmp_path, text, ending):
    write(tmp_path, "broken", text)
    with pytest.raises(ConfigError) as info:
        load(tmp_path, "broken")
    assert ending in str(info.value)


def test_entry_of_an_unknown_name_is_a_key_error_naming_it(config_dir):
    with pytest.raises(KeyError, match="NOPE"):
        load(config_dir, environ={"SECRET_KEY": "s"}).entry("NOPE")


def test_application_config_is_read_from_the_process_environment_by_default(monkeypatch):
    monkeypatch.setenv("APPLICATION_CONFIG", "production")
    assert config_name() == "production"


def test_check_configs_names_every_config_that_defines_a_missing_name(tmp_path):
    for name in ("a", "b"):
        write(tmp_path, name, [{"name": "X", "value": "1"}, {"name": "Y", "value": "1"}])
    write(tmp_path, "c", [{"name": "X", "value": "1"}])
    assert check_configs(tmp_path) == ([], ["config/c.json has no Y, which a, b define(s)."])


def test_module_show_reads_the_command_line_and_masks_only_secrets(capsys, monkeypatch):
    from project.configuration import main

    monkeypatch.setattr("sys.argv", ["configuration", "show", "testing"])
    assert main() == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "FLASK_CONFIG=testing" and "POSTGRES_DB=app_test" in out
    monkeypatch.setenv("APPLICATION_CONFIG", "testing")
    assert main(["show"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "FLASK_CONFIG=testing"


def test_module_check_names_every_valid_file(capsys):
    from project.configuration import main

    assert main(["check"]) == 0
    assert capsys.readouterr().out == "3 config files valid: development, production, testing.\n"


def test_module_check_reports_warnings_on_stdout_and_errors_on_stderr(capsys, monkeypatch, tmp_path):
    from project import configuration

    write(tmp_path, "a", [{"name": "X", "value": "1"}, {"name": "Y", "value": "1"}])
    write(tmp_path, "b", [{"name": "X", "value": "1"}])
    monkeypatch.setattr(configuration, "CONFIG_DIR", tmp_path)
    assert configuration.main(["check"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("warning: config/b.json has no Y, which a define(s).\n")
    write(tmp_path, "c", "[")
    assert configuration.main(["check"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ") and "c.json: invalid JSON" in captured.err
    assert "config files valid" not in captured.out


@pytest.mark.parametrize("argv", [["frobnicate"], ["show", "a", "b"]])
def test_module_usage_mistakes_print_the_usage_on_stderr(capsys, argv):
    from project.configuration import main

    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err == "usage: python -m project.configuration [check | show [NAME]]\n" and captured.out == ""


def test_only_the_password_of_the_role_that_connects_is_required(tmp_path):
    secrets = [
        {"name": "POSTGRES_PASSWORD", "valueFrom": "arn:app"},
        {"name": "POSTGRES_MIGRATION_PASSWORD", "valueFrom": "arn:owner"},
    ]
    write(tmp_path, "plain", secrets)
    write(tmp_path, "owner", [{"name": "DATABASE_ROLE", "value": "migration"}, *secrets])
    # No DATABASE_ROLE anywhere: the app role, which needs POSTGRES_PASSWORD only.
    assert load(tmp_path, "plain", environ={"POSTGRES_PASSWORD": "p"})["POSTGRES_PASSWORD"] == "p"
    with pytest.raises(ConfigError, match="environment variable POSTGRES_PASSWORD is not set"):
        load(tmp_path, "plain", environ={"POSTGRES_MIGRATION_PASSWORD": "m"})
    # The file's DATABASE_ROLE: the other role's secret is left unset.
    config = load(tmp_path, "owner", environ={"POSTGRES_MIGRATION_PASSWORD": "m"})
    assert "POSTGRES_PASSWORD" not in config and config.entry("POSTGRES_PASSWORD").source == "unset"
    with pytest.raises(ConfigError, match="environment variable POSTGRES_MIGRATION_PASSWORD is not set"):
        load(tmp_path, "owner", environ={"POSTGRES_PASSWORD": "p"})
    # The environment's DATABASE_ROLE wins over the file's.
    assert load(tmp_path, "owner", environ={"DATABASE_ROLE": "app", "POSTGRES_PASSWORD": "p"})["POSTGRES_PASSWORD"]
    with pytest.raises(ConfigError, match="environment variable POSTGRES_PASSWORD is not set"):
        load(tmp_path, "owner", environ={"DATABASE_ROLE": "app", "POSTGRES_MIGRATION_PASSWORD": "m"})


def test_the_config_name_comes_from_the_environ_given(tmp_path, monkeypatch):
    write(tmp_path, "chosen", [{"name": "A", "value": "1"}])
    monkeypatch.setenv("APPLICATION_CONFIG", "elsewhere")
    assert load_config(environ={"APPLICATION_CONFIG": "chosen"}, config_dir=tmp_path).name == "chosen"


def test_a_value_from_the_environment_is_named_with_its_file_entry_and_value(tmp_path):
    write(tmp_path, "dev", [{"name": "FLASK_DEBUG", "value": "false"}, {"name": "LOG_LEVEL", "value": "INFO"}])
    where = tmp_path / "dev.json"
    with pytest.raises(ConfigError) as info:
        load(tmp_path, "dev", environ={"FLASK_DEBUG": "maybe"})
    assert str(info.value) == (
        f"{where}: entry 1 (FLASK_DEBUG), from the environment variable FLASK_DEBUG: 'maybe' is not valid; "
        'FLASK_DEBUG is "true" or "false".'
    )
    with pytest.raises(ConfigError) as info:
        load(tmp_path, "dev", environ={"LOG_LEVEL": "LOUD"})
    assert str(info.value).endswith("'LOUD' is not valid; LOG_LEVEL is one of DEBUG, INFO, WARNING, ERROR, CRITICAL.")


def test_the_highest_port_is_valid(tmp_path):
    write(tmp_path, "dev", [{"name": "POSTGRES_PORT", "value": "65535"}])
    assert load(tmp_path, "dev")["POSTGRES_PORT"] == "65535"


def test_a_folder_without_configs_says_so(tmp_path):
    with pytest.raises(ConfigError) as info:
        load(tmp_path, "development")
    assert str(info.value).endswith("available configs: none: the folder has no .json file.")


def test_a_file_that_cannot_be_read_or_decoded_is_one_sentence(tmp_path):
    from project.configuration import read_entries

    (tmp_path / "dir.json").mkdir()
    with pytest.raises(ConfigError) as info:
        read_entries(tmp_path / "dir.json")
    assert str(info.value) == f"{tmp_path / 'dir.json'}: cannot be read (Is a directory)."
    (tmp_path / "latin.json").write_bytes(b'[{"name": "A", "value": "\xe9"}]')
    with pytest.raises(ConfigError) as info:
        read_entries(tmp_path / "latin.json")
    assert str(info.value) == f"{tmp_path / 'latin.json'}: is not UTF-8 text."
    (tmp_path / "utf8.json").write_text('[{"name": "A", "value": "é"}]', encoding="utf-8")
    assert read_entries(tmp_path / "utf8.json") == [{"name": "A", "value": "é"}]


def test_a_config_file_is_read_as_utf_8_whatever_the_locale(tmp_path, ascii_locale):
    from project.configuration import read_entries

    (tmp_path / "utf8.json").write_text('[{"name": "A", "value": "café"}]', encoding="utf-8")
    assert read_entries(tmp_path / "utf8.json") == [{"name": "A", "value": "café"}]


def test_a_value_of_another_json_type_gets_no_hint(tmp_path):
    write(tmp_path, "broken", '[{"name": "A", "value": ["x"]}]')
    with pytest.raises(ConfigError) as info:
        load(tmp_path, "broken")
    assert str(info.value).endswith("(A): 'value' must be a string, as ECS requires, not a JSON list.")


def test_replace_keeps_the_file_and_secrets_and_marks_what_it_set(config_dir):
    config = load(config_dir, environ={"SECRET_KEY": "s"})
    changed = config.replace(SECRET_KEY="t", EXTRA="1")
    assert changed.path == config.path and changed.entry("SECRET_KEY").secret
    assert [(e.name, e.value, e.source) for e in changed.entries if e.source == "override"] == [
        ("SECRET_KEY", "t", "override"),
        ("EXTRA", "1", "override"),
    ]


def test_an_empty_secret_from_the_environment_counts_as_unset(config_dir):
    config = load(config_dir, environ={"SECRET_KEY": ""}, require_secrets=False)
    assert "SECRET_KEY" not in config and config.entry("SECRET_KEY").source == "unset"
    with pytest.raises(ConfigError, match="environment variable SECRET_KEY is not set"):
        load(config_dir, environ={"SECRET_KEY": ""})


@pytest.mark.parametrize("name", ["SQLALCHEMY_DATABASE_URI", "SQLALCHEMY_BINDS"])
def test_a_connection_url_setting_is_refused_in_one_sentence(tmp_path, name):
    write(tmp_path, "development", [{"name": "POSTGRES_DB", "value": "app"}, {"name": name, "value": "postgresql://x"}])
    with pytest.raises(ConfigError) as info:
        load(tmp_path)
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'development.json'}: entry 2 ({name}): ")
    assert "POSTGRES_* settings the deploy checks read" in message and message.endswith("remove it.")
    assert "\n" not in message


def test_a_config_name_ending_in_a_newline_is_refused(config_dir):
    with pytest.raises(ConfigError, match="is not a config name"):
        load(config_dir, name="development\n")


def test_an_entry_name_ending_in_a_newline_is_refused(tmp_path):
    write(tmp_path, "development", [{"name": "POSTGRES_DB\n", "value": "app"}])
    with pytest.raises(ConfigError, match="must be an environment variable name"):
        load(tmp_path)


def test_a_deeply_nested_file_is_one_sentence_not_a_recursion_error(tmp_path):
    write(tmp_path, "development", "[" * 100_000 + "]" * 100_000)
    with pytest.raises(ConfigError, match="nested too deeply"):
        load(tmp_path)


@pytest.mark.parametrize("port", ["١٥٤٣٢", "１５４３２", "15432\n"])
def test_a_port_in_other_digits_is_refused(tmp_path, port):
    write(tmp_path, "development", [{"name": "POSTGRES_PORT", "value": port}])
    with pytest.raises(ConfigError, match="POSTGRES_PORT is a whole number from 0 to 65535"):
        load(tmp_path)


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("POSTGRES_REQUIRE_AUTH", "", None),  # empty: not set, for the one optional choice
        ("POSTGRES_REQUIRE_AUTH", "plain", "'plain' is not valid; POSTGRES_REQUIRE_AUTH is one of scram-sha-256, "
         "!password, md5, gss, sspi, password, none or empty."),
        ("POSTGRES_SSLMODE", "", "'' is not valid; POSTGRES_SSLMODE is one of disable, allow, prefer, require, "
         "verify-ca, verify-full."),
    ],
)  # fmt: skip
def test_only_an_optional_choice_may_be_empty_and_its_refusal_says_so(name, value, said):
    from project.configuration import check_value

    if said is None:
        check_value("here", name, value)
    else:
        with pytest.raises(ConfigError) as refused:
            check_value("here", name, value)
        assert str(refused.value) == f"here: {said}"


@pytest.mark.parametrize(
    ("value", "valid"),
    [("", True), ("127.0.0.1:1", True), ("0.0.0.0:65535", True), ("[::1]:9464", True),
     ("127.0.0.1:0", False), ("127.0.0.1:65536", False), ("127.0.0.1", False), ("a b:9464", False)],
)  # fmt: skip
def test_a_metrics_bind_is_empty_or_a_host_and_a_port_from_1_to_65535(value, valid):
    from project.configuration import check_value

    if valid:
        check_value("here", "METRICS_BIND", value)
    else:
        with pytest.raises(ConfigError) as refused:
            check_value("here", "METRICS_BIND", value)
        assert str(refused.value) == (
            f"here: {value!r} is not valid; METRICS_BIND is empty (no metrics endpoint) or HOST:PORT such as "
            '"127.0.0.1:9464".'
        )
