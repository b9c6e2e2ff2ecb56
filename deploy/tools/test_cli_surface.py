"""Tests of the flag and variable checker (cli_surface.py): its help parser, how it finds the
flags of our commands in Markdown, YAML and Dockerfiles, and the mismatches it reports.

The binaries are not needed: their help is given as clap prints it. The real binaries are
checked by deploy/check. Run: `pytest deploy/tools` (deploy/check does, in its tools venv).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cli_surface import Surface, Use, file_uses, parse_help, problems, table_gaps

TOOLS = Path(__file__).resolve().parent

SFU_HELP = """\
The SFU: forwards encrypted media it cannot read

Usage: sfu [OPTIONS] [COMMAND]

Commands:
  drain  Ask the SFU on this host to drain, and wait until it is empty
  help   Print this message or the help of the given subcommand(s)

Options:
      --config <CONFIG>
          TOML config file

          [env: SFU_CONFIG=]

      --http-port <HTTP_PORT>
          HTTP port (metrics, probes, control API) [env: SFU_HTTP_PORT=]
          --in-a-description is not an option
      --control-secret <CONTROL_SECRET>
          Shared secret of the control API [env: SFU_CONTROL_SECRET]
      --drain-timeout <DRAIN_TIMEOUT>
          Seconds to wait for peers to leave after SIGTERM [env:
          SFU_DRAIN_TIMEOUT_SECONDS=]
      --log <LOG>
          `tracing` filter (then `RUST_LOG`, then `info`) [env: SFU_LOG=]
  -h, --help
          Print help
  -V, --version
          Print version
"""

SIGNALING_HELP = """\
Usage: signaling <COMMAND>

Commands:
  serve  Run the signaling service
  dev    Signaling with an embedded SFU on 127.0.0.1
  token  Print a join token
  help   Print this message or the help of the given subcommand(s)

Options:
  -h, --help     Print help
  -V, --version  Print version
"""

SERVE_HELP = """\
Usage: signaling serve [OPTIONS]

Options:
      --sfu-url <SFU_URL>        base URLs of the SFU nodes [env: SIGNALING_SFU_URL=]
      --api-keys <API_KEYS>      JWT keys [env: SIGNALING_API_KEYS]
      --log <LOG>                tracing filter [env: SIGNALING_LOG=]
  -h, --help                     Print help
"""

TOKEN_HELP = """\
Usage: signaling token [OPTIONS] --room <ROOM> --identity <IDENTITY>

Options:
      --room <ROOM>          room id
      --identity <IDENTITY>  identity
      --role <ROLE>          caller or viewer [default: caller]
  -h, --help                 Print help
"""

LOADTEST_HELP = """\
Usage: loadtest [OPTIONS] <COMMAND>

Commands:
  meeting    Callers who all publish
  broadcast  One presenter, many viewers
  help       Print this message or the help of the given subcommand(s)

Options:
      --duration <DURATION>  seconds [default: 10]
      --admin-token <ADMIN_TOKEN>  admin token [env: LOADTEST_ADMIN_TOKEN]
  -h, --help                 Print help
  -V, --version              Print version
"""

MEETING_HELP = """\
Usage: loadtest meeting [OPTIONS]

Options:
      --callers <CALLERS>    callers [default: 6]
      --duration <DURATION>  seconds [default: 10]
  -h, --help                 Print help
"""


def surface() -> Surface:
    s = Surface()
    s.helps[("sfu", None)] = parse_help(SFU_HELP)
    s.helps[("sfu", "drain")] = parse_help("Usage: sfu drain\n\nOptions:\n  -h, --help  Print help\n")
    s.helps[("signaling", None)] = parse_help(SIGNALING_HELP)
    s.helps[("signaling", "serve")] = parse_help(SERVE_HELP)
    s.helps[("signaling", "token")] = parse_help(TOKEN_HELP)
    s.helps[("loadtest", None)] = parse_help(LOADTEST_HELP)
    s.helps[("loadtest", "meeting")] = parse_help(MEETING_HELP)
    return s


def uses_of(tmp_path: Path, name: str, text: str) -> list[Use]:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return file_uses(path, surface().subcommands(), root=tmp_path)


def short(uses: list[Use]) -> set[tuple]:
    return {(u.line, u.kind, u.name, u.binary, u.subcommand) for u in uses}


# ---- help ------------------------------------------------------------------------------------

def test_help_lists_flags_env_and_subcommands():
    h = parse_help(SFU_HELP)
    assert h.flags == {"config", "http-port", "control-secret", "drain-timeout", "log", "help",
                       "version"}
    # hidden values (`[env: NAME]`) and an entry wrapped over two lines count too
    assert h.env == {"SFU_CONFIG", "SFU_HTTP_PORT", "SFU_CONTROL_SECRET",
                     "SFU_DRAIN_TIMEOUT_SECONDS", "SFU_LOG"}
    assert h.subcommands == {"drain"}
    assert parse_help(SIGNALING_HELP).subcommands == {"serve", "dev", "token"}
    assert parse_help(SERVE_HELP).subcommands == set()


# ---- Markdown --------------------------------------------------------------------------------

def test_markdown_commands_in_code_spans_blocks_and_cargo_run(tmp_path):
    text = """\
# Run

Production runs `sfu` and `signaling serve --sfu-url …`; a token with `cargo run --release -p
signaling -- token --room demo --identity carol`.

```sh
cargo run -p loadtest -- --duration 5 meeting --callers 4 \\
  --duration 8   # a comment --not-a-flag
docker compose up --build -d
cargo build --release -p sfu --bin sfu
sfu-harness --fake
SIGNALING_LOG=debug target/debug/signaling serve --log debug | tee --append log
```

Build with `cargo build --release -p loadtest`, then `B=target/release/loadtest`:
`$B meeting --callers 20` and `kubectl create secret --from-literal=x`.
"""
    assert short(uses_of(tmp_path, "a.md", text)) == {
        (3, "flag", "sfu-url", "signaling", "serve"),
        (3, "flag", "room", "signaling", "token"),
        (3, "flag", "identity", "signaling", "token"),
        (7, "flag", "duration", "loadtest", None),
        (7, "flag", "callers", "loadtest", "meeting"),
        (7, "flag", "duration", "loadtest", "meeting"),
        (12, "env", "SIGNALING_LOG", None, None),
        (12, "flag", "log", "signaling", "serve"),
        (16, "flag", "callers", "loadtest", "meeting"),
    }


def test_markdown_settings_table_takes_its_command_from_the_bold_line(tmp_path):
    text = """\
**`sfu`** (the SFU)

| flag | environment |
|---|---|
| `--http-port`, `--udp-port` | `SFU_HTTP_PORT` |
| `--log` | `SFU_LOG` (then `RUST_LOG`) |

**`signaling serve`**

| flag | environment |
|---|---|
| `--sfu-url` | `SIGNALING_SFU_URL`, the nodes' `SFU_CONTROL_SECRET` |

## Next section

| `--callers` | a table without a command: not ours to check |
"""
    assert short(uses_of(tmp_path, "b.md", text)) == {
        (5, "flag", "http-port", "sfu", None),
        (5, "flag", "udp-port", "sfu", None),
        (5, "env", "SFU_HTTP_PORT", "sfu", None),
        (6, "flag", "log", "sfu", None),
        (6, "env", "SFU_LOG", "sfu", None),
        (6, "env", "RUST_LOG", "sfu", None),
        (12, "flag", "sfu-url", "signaling", "serve"),
        (12, "env", "SIGNALING_SFU_URL", "signaling", "serve"),
        (12, "env", "SFU_CONTROL_SECRET", None, None),
    }


def test_prefix_mentions_and_other_programs_variables_are_not_settings(tmp_path):
    text = "Use `SFU_TLS_*` for HTTPS; `SERVICE_LOG` is the harness'; `MY_SFU_THING` is not ours.\n"
    assert uses_of(tmp_path, "c.md", text) == []


# ---- YAML and Dockerfiles --------------------------------------------------------------------

def test_kubernetes_container_env_args_and_hooks(tmp_path):
    text = """\
apiVersion: apps/v1
kind: Deployment
spec:
  template:
    spec:
      containers:
        - name: signaling
          image: registry.example.com/e2ee-sfu/signaling:0.1.0
          args: ["serve", "--sfu-url", "http://sfu-0.sfu:7880"]
          env:
            - name: SIGNALING_LOG
              value: info
          lifecycle:
            preStop:
              exec:
                command: ["/usr/local/bin/sfu", "drain", "--wait"]
        - name: prometheus
          image: prom/prometheus
          args: ["--config.file=/etc/p.yml"]
"""
    assert short(uses_of(tmp_path, "k8s/d.yaml", text)) == {
        (9, "flag", "sfu-url", "signaling", "serve"),
        (11, "env", "SIGNALING_LOG", "signaling", "serve"),
        (16, "flag", "wait", "sfu", "drain"),
    }


def test_compose_services_and_patches(tmp_path):
    compose = """\
services:
  sfu:
    build: {context: ../.., dockerfile: deploy/docker/sfu.Dockerfile}
    environment:
      SFU_LOG: ${SFU_LOG:-info}
  signaling:
    image: e2ee-sfu/signaling:dev
    command: ["serve", "--log", "debug"]
    environment:
      - SIGNALING_SFU_URL=http://sfu:7880
"""
    assert short(uses_of(tmp_path, "compose.yaml", compose)) == {
        (5, "env", "SFU_LOG", "sfu", None),
        (8, "flag", "log", "signaling", "serve"),
        (10, "env", "SIGNALING_SFU_URL", "signaling", "serve"),
    }
    patch = "spec:\n  containers:\n    - name: sfu\n      env:\n        - name: SFU_LOG\n"
    assert short(uses_of(tmp_path, "patch.yaml", patch)) == {(5, "env", "SFU_LOG", "sfu", None)}


def test_dockerfile_entrypoint_cmd_and_env(tmp_path):
    text = """\
FROM x AS build
RUN cargo build --release --locked -p signaling --bin signaling
ENV SIGNALING_BIND_ADDRESS=0.0.0.0 \\
    SIGNALING_LOG=info
HEALTHCHECK --interval=10s \\
  CMD ["/usr/local/bin/wget", "-q", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["/usr/local/bin/signaling"]
CMD ["serve", "--http-port", "8080"]
"""
    assert short(uses_of(tmp_path, "signaling.Dockerfile", text)) == {
        (3, "env", "SIGNALING_BIND_ADDRESS", "signaling", "serve"),
        (3, "env", "SIGNALING_LOG", "signaling", "serve"),
        (8, "flag", "http-port", "signaling", "serve"),
    }


# ---- the check -------------------------------------------------------------------------------

def test_problems_name_file_line_flag_and_command():
    uses = [
        Use("a.md", 1, "flag", "sfu-url", "signaling", "serve"),        # ok
        Use("a.md", 2, "flag", "sfu-url", "signaling", None),           # not on the parent
        Use("a.md", 3, "flag", "callers", "loadtest", "meeting"),       # ok
        Use("a.md", 4, "flag", "duration", "loadtest", None),           # ok (global)
        Use("a.md", 5, "flag", "readyz-path", "sfu", None),             # unknown
        Use("a.md", 6, "flag", "help", "sfu", "drain"),                 # always there
        Use("a.md", 7, "env", "SFU_DRAIN_TIMEOUT_SECONDS", None, None),  # by prefix, wrapped
        Use("a.md", 8, "env", "SFU_DRAIN_TIMEOUT", "sfu", None),        # misspelt
        Use("a.md", 9, "env", "SIGNALING_SFU_URL", "signaling", "token"),  # not that subcommand
        Use("a.md", 10, "env", "SIGNALING_API_KEYS", "signaling", None),   # any subcommand
        Use("a.md", 11, "env", "RUST_LOG", "sfu", None),                # mentioned in sfu's help
        Use("a.md", 12, "env", "RUST_LOG", "signaling", "serve"),       # not in serve's
        Use("a.md", 13, "env", "LOADTEST_API_KEY", None, None),         # not read
        Use("a.md", 14, "flag", "room", "signaling", "serve"),          # token's, not serve's
    ]
    assert problems(uses, surface()) == [
        "a.md:2: --sfu-url is not accepted by `signaling` (its --help does not list it)",
        "a.md:5: --readyz-path is not accepted by `sfu` (its --help does not list it)",
        "a.md:8: SFU_DRAIN_TIMEOUT is not read by `sfu` (no [env: SFU_DRAIN_TIMEOUT=] in its --help)",
        "a.md:9: SIGNALING_SFU_URL is not read by `signaling token` "
        "(no [env: SIGNALING_SFU_URL=] in its --help)",
        "a.md:12: RUST_LOG is not mentioned in the --help of `signaling serve`",
        "a.md:13: LOADTEST_API_KEY is not read by `loadtest` "
        "(no [env: LOADTEST_API_KEY=] in its --help)",
        "a.md:14: --room is not accepted by `signaling serve` (its --help does not list it)",
    ]


def test_command_line_reports_a_missing_binary(tmp_path):
    env = {"SFU_BIN": str(tmp_path / "no-such-sfu"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, str(TOOLS / "cli_surface.py")], env=env,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2, done
    assert "no-such-sfu missing" in done.stderr



def test_a_settings_table_must_list_every_setting_of_its_command(tmp_path):
    text = """\
**`signaling serve`**

| flag | environment |
|---|---|
| `--sfu-url` | `SIGNALING_SFU_URL` |
| `--log` | `SIGNALING_LOG` |

Run it from `deploy/live-check` with `$SIGNALING_BIN` set (a variable of the script, not ours).
"""
    uses = uses_of(tmp_path, "d.md", text)
    assert {u.name for u in uses} == {"sfu-url", "SIGNALING_SFU_URL", "log", "SIGNALING_LOG"}
    assert table_gaps(uses, surface()) == [
        "d.md:5: the `signaling serve` table lacks --api-keys, which its --help lists",
        "d.md:5: the `signaling serve` table lacks SIGNALING_API_KEYS, which its --help lists",
    ]
