"""Optional bearer-token auth on the real service: the API needs a token, probes stay open,
metrics as configured, and every refusal looks the same."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from load_tests.server import RunningService, running_service
from tests.conftest import Built
from tests.service.conftest import sample, schemathesis
from tests.support.waiting import wait_until

# Tokens are at least 16 characters (service.tokens.MIN_TOKEN_CHARS).
TOKEN_A, TOKEN_B, FILE_TOKEN = "token-a-0123456789", "token-b-0123456789", "token-from-file-0123"
COMMENT = "# rotated 2024-05"


@pytest.fixture(scope="module")
def secured(small_model: Built, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    tmp = tmp_path_factory.mktemp("auth")
    tokens_file = tmp / "tokens"
    # As editors and Windows tools save it: a BOM first, a comment, a blank line.
    tokens_file.write_text(f"\ufeff{FILE_TOKEN}\n{COMMENT}\n\n{FILE_TOKEN}-2\n", encoding="utf-8")
    env = {
        "TEXTCLF_API_TOKENS": f"{TOKEN_A}, {TOKEN_B}",
        "TEXTCLF_API_TOKENS_FILE": str(tokens_file),
        "TEXTCLF_OPEN_METRICS": "false",
    }
    with running_service(small_model.artifact, tmp / "service.log", workers=1, env=env) as svc:
        yield svc


def post(svc: RunningService, authorization: str | None) -> httpx.Response:
    headers = {"authorization": authorization} if authorization is not None else {}
    return httpx.post(svc.url + "/v1/classify", json={"text": "I love it"}, headers=headers, timeout=30)


@pytest.mark.parametrize(
    "authorization",
    # The file's first token comes right after its BOM.
    [f"Bearer {TOKEN_A}", f"Bearer {TOKEN_B}", f"bearer {FILE_TOKEN}", f"Bearer {FILE_TOKEN}-2"],
)
def test_any_configured_token_is_accepted(secured: RunningService, authorization: str) -> None:
    assert post(secured, authorization).status_code == 200


def test_the_tokens_files_comment_is_no_token_and_its_bom_no_part_of_one(secured: RunningService) -> None:
    # A comment line once became a token: whoever read the file's comments could get in.
    assert post(secured, f"Bearer {COMMENT}").status_code == 401
    assert post(secured, f"Bearer {FILE_TOKEN}").status_code == 200  # the first line, after the BOM


def test_refusals_do_not_say_which_part_failed(secured: RunningService) -> None:
    wrong = [
        None,
        "",
        "Bearer",
        "Bearer token-c-0123456789",
        f"Bearer {TOKEN_A}2",
        f"Basic {TOKEN_A}",
        TOKEN_A,
    ]
    refusals = [post(secured, a) for a in wrong]
    assert {r.status_code for r in refusals} == {401}
    assert len({r.content for r in refusals}) == 1
    assert refusals[0].json() == {"error": "a valid bearer token is required", "error_type": "unauthorized"}
    assert all(r.headers["www-authenticate"].startswith("Bearer") for r in refusals)
    assert all(TOKEN_A not in r.text for r in refusals)


def test_probes_stay_open_and_metrics_follow_the_setting(secured: RunningService) -> None:
    assert httpx.get(secured.url + "/health/live", timeout=10).status_code == 200
    assert httpx.get(secured.url + "/health/ready", timeout=10).status_code == 200
    assert httpx.get(secured.url + "/metrics", timeout=10).status_code == 401
    scraped = httpx.get(secured.url + "/metrics", headers={"authorization": f"Bearer {TOKEN_A}"}, timeout=10)
    assert scraped.status_code == 200 and "textclf_errors_total" in scraped.text


def test_refusals_are_counted(secured: RunningService) -> None:
    def refused() -> float:
        return sample(secured, "textclf_errors_total", token=TOKEN_A, error_type="unauthorized")

    before = refused()
    post(secured, "Bearer nope")
    assert refused() == before + 1


def test_schema_declares_the_scheme_and_schemathesis_finds_auth_enforced(
    secured: RunningService, tmp_path: Path
) -> None:
    schema = httpx.get(secured.url + "/openapi.json", timeout=10).json()
    assert schema["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    assert schema["paths"]["/v1/classify"]["post"]["security"] == [{"bearer": []}]
    assert "security" not in schema["paths"]["/health/ready"]["get"]
    # With a token every check passes, ignored_auth included: it retries without the token
    # (and with a wrong one) and fails if the service answers anything but 401.
    result = schemathesis(secured.url, tmp_path, token=TOKEN_A)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout


def test_missing_tokens_file_stops_start_up(small_model: Built, tmp_path: Path) -> None:
    env = {"TEXTCLF_API_TOKENS_FILE": str(tmp_path / "absent")}
    with pytest.raises(RuntimeError, match="TEXTCLF_API_TOKENS_FILE|api_tokens_file"):
        with running_service(small_model.artifact, tmp_path / "service.log", workers=1, env=env):
            pass


def test_the_tei_route_needs_a_token_too(secured: RunningService) -> None:
    url = secured.url + "/predict"
    assert httpx.post(url, json={"inputs": "hi"}, timeout=30).status_code == 401
    allowed = httpx.post(
        url, json={"inputs": "hi"}, headers={"authorization": f"Bearer {TOKEN_A}"}, timeout=30
    )
    assert allowed.status_code == 200


def test_a_rotated_tokens_file_takes_effect_without_a_restart(small_model: Built, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "tokens").write_text("old-token-0123456789\n")
    env = {"TEXTCLF_API_TOKENS_FILE": str(secret / "tokens")}
    with running_service(small_model.artifact, tmp_path / "service.log", workers=1, env=env) as svc:
        assert post(svc, "Bearer old-token-0123456789").status_code == 200
        # As the kubelet updates a mounted Secret: the new file is written aside, then swapped in.
        (secret / "tokens.new").write_text("new-token-0123456789\n")
        (secret / "tokens.new").replace(secret / "tokens")
        wait_for(svc, "Bearer new-token-0123456789", 200)
        assert post(svc, "Bearer old-token-0123456789").status_code == 401
        # Auth fails closed: a file that disappears accepts no token, and works again once back.
        (secret / "tokens").unlink()
        wait_for(svc, "Bearer new-token-0123456789", 401)
        (secret / "tokens").write_text("new-token-0123456789\n")
        wait_for(svc, "Bearer new-token-0123456789", 200)
        # An emptied one accepts none either.
        (secret / "tokens").write_text("\n")
        wait_for(svc, "Bearer new-token-0123456789", 401)
        assert post(svc, None).status_code == 401
        assert "tokens file" in (tmp_path / "service.log").read_text()
        assert "new-token-0123456789" not in (tmp_path / "service.log").read_text()


def wait_for(svc: RunningService, authorization: str, status: int) -> None:
    """Until a classify request with this header gets `status` (the file is re-read within a second)."""
    wait_until(
        lambda: post(svc, authorization).status_code == status, f"{authorization!r} to get {status}", 10
    )


def test_an_empty_tokens_file_at_start_refuses_everyone_until_a_token_arrives(
    small_model: Built, tmp_path: Path
) -> None:
    # A Secret that an operator or a secrets sidecar fills after the pod starts.
    tokens = tmp_path / "tokens"
    tokens.write_text("")
    env = {"TEXTCLF_API_TOKENS_FILE": str(tokens)}
    with running_service(small_model.artifact, tmp_path / "service.log", workers=1, env=env) as svc:
        assert post(svc, None).status_code == 401
        assert post(svc, "Bearer any-guess-0123456789").status_code == 401
        assert httpx.get(svc.url + "/health/ready", timeout=10).status_code == 200  # probes stay open
        tokens.write_text("late-token-0123456789\n")
        wait_for(svc, "Bearer late-token-0123456789", 200)
        assert post(svc, None).status_code == 401


def test_an_unfit_token_written_later_is_refused_and_logged_without_its_value(
    small_model: Built, tmp_path: Path
) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{FILE_TOKEN}\n")
    log = tmp_path / "service.log"
    with running_service(
        small_model.artifact, log, workers=1, env={"TEXTCLF_API_TOKENS_FILE": str(tokens)}
    ) as svc:
        # Refused at start-up, such lines are skipped at a re-read: the file's other tokens still work.
        tokens.write_text(f"{FILE_TOKEN}\n{FILE_TOKEN}-2\nshort-7f3a\n---\n")
        wait_for(svc, f"Bearer {FILE_TOKEN}-2", 200)
        assert post(svc, "Bearer short-7f3a").status_code == 401
        assert post(svc, "Bearer ---").status_code == 401
        assert post(svc, f"Bearer {FILE_TOKEN}").status_code == 200
        text = log.read_text()
        assert f"{tokens} line 3: a token is shorter than 16 characters" in text
        assert f"{tokens} line 4: a token is shorter than 16 characters" in text
        assert "short-7f3a" not in text and FILE_TOKEN not in text


@pytest.mark.parametrize(
    "path",
    [
        "/v2/models/ready",  # the metadata of a model named "ready"
        "/v2/models/x/versions/ready",  # of its version "ready"
        "/v2/models/a/b/ready",
        "/v2/models//ready",
        "/v2/health/other",
    ],
)
def test_a_path_that_only_looks_like_a_probe_needs_a_token(secured: RunningService, path: str) -> None:
    answer = httpx.get(secured.url + path, timeout=10)
    assert (answer.status_code, answer.json()["error_type"]) == (401, "unauthorized")


def test_every_probe_route_stays_open(secured: RunningService, small_model: Built) -> None:
    name, version = small_model.manifest["name"], small_model.manifest["version"]
    probes = ["/health/live", "/health/ready", "/v2/health/live", "/v2/health/ready"]
    probes += [f"/v2/models/{name}/ready", f"/v2/models/{name}/versions/{version}/ready"]
    assert {p: httpx.get(secured.url + p, timeout=10).status_code for p in probes} == dict.fromkeys(
        probes, 200
    )
