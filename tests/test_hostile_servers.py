"""`--endpoint` against servers that misbehave: the key never leaves its origin, and every failure is one line."""
import pytest

from hostile_server import MODELS, HostileServer, completion_stream, redirect, send_json, send_stream
from test_cli import tfchat

KEY = "SECRETKEY"


@pytest.fixture
def servers():
    made = []

    def make(routes):
        server = HostileServer(routes)
        made.append(server)
        return server
    yield make
    for server in made:
        server.close()


def _generate(server, *extra):
    return tfchat("generate", "--endpoint", server.url, "--api-key", KEY, "--preset", "greedy", "--max-new-tokens", "4",
                  *extra, "Hi",
                  timeout=60)


def _one_line_exit_2(r, needle):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
    assert needle in r.stderr, r.stderr


def test_a_redirect_to_another_origin_is_not_followed_and_the_key_stays_home(servers):
    trap = servers({("GET", "/v1/models"): send_json(200, MODELS)})
    server = servers({("GET", "/v1/models"): redirect(302, f"http://127.0.0.1:{trap.port}/v1/models")})
    r = _generate(server)
    _one_line_exit_2(r, "another origin")
    assert trap.requests == []  # neither the key nor anything else reached the other port


def test_a_redirected_post_is_refused_not_resent_as_a_get(servers):
    server = servers({("GET", "/v1/models"): send_json(200, MODELS),
                      ("POST", "/v1/completions"): redirect(302, "/v1/elsewhere"),
                      ("GET", "/v1/elsewhere"): send_stream(completion_stream())})
    r = _generate(server)
    _one_line_exit_2(r, "a request with a body is not resent")
    assert [(m, p) for m, p, _ in server.requests] == [("GET", "/v1/models"), ("POST", "/v1/completions")]


def test_a_redirect_within_the_same_origin_is_followed_with_the_key(servers):
    server = servers({("GET", "/v1/models"): redirect(301, "/v2/models"),
                      ("GET", "/v2/models"): send_json(200, MODELS),
                      ("POST", "/v1/completions"): send_stream(completion_stream())})
    r = _generate(server)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Hello there")
    followed = [headers for method, path, headers in server.requests if path == "/v2/models"]
    assert followed and followed[0].get("Authorization") == f"Bearer {KEY}"
