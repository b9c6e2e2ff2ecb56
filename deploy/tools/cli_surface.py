#!/usr/bin/env python3
"""Checks that every flag and environment variable the docs and manifests name really exists.

It collects each command-line flag (`--name`) given to one of our binaries (`sfu`, `signaling`,
`loadtest`, `recorder`, with their subcommands) and each environment variable of ours (`SFU_*`,
`SIGNALING_*`, `LOADTEST_*`, `RECORDER_*`, `RUST_LOG`) named in deploy/ (compose, Kubernetes manifests,
Dockerfiles, env.example, the operator guide), docs/ and README.md, and compares them with what
the built binaries' `--help` lists (clap prints `[env: NAME=]` beside env-backed flags):

    cli_surface.py                    check the default files against target/debug/{sfu,...}
    cli_surface.py --list             print every use found and where, check nothing
    cli_surface.py FILE...            check only these files

A flag belongs to a binary when it follows one in a command: a fenced shell block or a code
span of Markdown (`signaling serve --sfu-url ...`, `cargo run -p loadtest -- meeting ...`,
`$B meeting` after `B=target/release/loadtest`), an `ENTRYPOINT`/`CMD` of a Dockerfile, the
`args`/`command` of a container or compose service whose image is the binary, or a row of a
Markdown settings table under a `**`binary subcommand`**` line. Flags before a subcommand are
the parent's, flags after it the subcommand's. Flags of other programs (cargo, kubectl,
docker) are not looked at. A variable belongs to the binary its prefix names; in a container's
environment, a Dockerfile or a settings table it is checked against that binary and subcommand;
`RUST_LOG` must be mentioned in the help of the binary it is named with (or of any binary).

Every binary must also answer `--version`. The binaries are `$SFU_BIN`, `$SIGNALING_BIN`,
`$LOADTEST_BIN`, `$RECORDER_BIN` (default target/debug/<name>, as deploy/live-check); nothing is built here.
Their help is read with an empty environment, so no setting of the caller leaks into it.

Exit status: 0 everything accepted, 1 a mismatch (each printed as FILE:LINE), 2 a binary is
missing or its help cannot be read.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent.parent
BINARIES = ("sfu", "signaling", "loadtest", "recorder")
ENV_PREFIXES = {"SFU_": "sfu", "SIGNALING_": "signaling", "LOADTEST_": "loadtest",
                "RECORDER_": "recorder"}
# Our variables: a prefix and at least one more word; a bare `SFU_TLS_*` (prefix mention) ends
# in `_` and is skipped.
ENV_NAME = re.compile(
    r"\b(?:(?:SFU|SIGNALING|LOADTEST|RECORDER)_[A-Z0-9_]*[A-Z0-9]|RUST_LOG)\b(?!_)")
FLAG = re.compile(r"^--([a-z0-9][a-z0-9-]*)(?:=.*)?$")
# Tokens that end one shell command and start the next.
SEPARATORS = frozenset({"|", "||", "&&", ";", "&", "(", ")", "{", "}", "then", "do"})
# Words that may stand before the program in command position.
PREFIX_WORDS = frozenset({"exec", "env", "sudo", "time", "nohup"})
ALIAS = re.compile(
    r"\b([A-Za-z_][A-Za-z0-9_]*)=\"?(?:\S*/)?(sfu|signaling|loadtest|recorder)\"?(?=\s|$|`)")
BOLD_CONTEXT = re.compile(r"^\*\*`([^`]+)`\*\*")
CODE_SPAN = re.compile(r"`([^`]+)`")
ALWAYS_ACCEPTED = frozenset({"help"})
# Variables of deploy/check and deploy/live-check themselves (which binary to run), named in the
# guide beside the binaries' settings but read by no binary.
SCRIPT_VARIABLES = frozenset({"SFU_BIN", "SIGNALING_BIN", "LOADTEST_BIN", "RECORDER_BIN"})
# Flags every clap command has; a settings table need not list them.
STANDARD_FLAGS = frozenset({"help", "version"})


class InputError(Exception):
    """A binary is missing or its help could not be read, or a file could not be parsed."""


@dataclass(frozen=True)
class Use:
    """One flag or variable named in a file, with the command it was given to (if known)."""

    path: str
    line: int
    kind: str  # "flag" or "env"
    name: str  # without the leading `--`
    binary: str | None = None
    subcommand: str | None = None
    # "table" for a row of a settings table (those must list every setting of their command).
    origin: str = "text"

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def command(self) -> str:
        return f"{self.binary} {self.subcommand}" if self.subcommand else str(self.binary)


@dataclass
class Help:
    """What one `binary [subcommand] --help` lists."""

    flags: set[str] = field(default_factory=set)
    env: set[str] = field(default_factory=set)
    subcommands: set[str] = field(default_factory=set)
    text: str = ""


@dataclass
class Surface:
    """The help of every binary and subcommand: key (binary, subcommand or None)."""

    helps: dict[tuple[str, str | None], Help] = field(default_factory=dict)

    def subcommands(self) -> dict[str, set[str]]:
        return {b: h.subcommands for (b, s), h in self.helps.items() if s is None}

    def of(self, binary: str, subcommand: str | None) -> list[Help]:
        """The help of that command; every help of the binary when no subcommand is named."""
        if subcommand is not None:
            found = self.helps.get((binary, subcommand))
            return [found] if found else []
        return [h for (b, _), h in self.helps.items() if b == binary]


# ---- help text -------------------------------------------------------------------------------

# clap's option lines: `  -h, --help` or `      --config <CONFIG>` (descriptions are indented
# further, so a flag named inside one is not taken for an option).
HELP_FLAG = re.compile(r"^  (?:-[A-Za-z0-9], |    )--([a-z0-9][a-z0-9-]*)", re.M)
HELP_ENV = re.compile(r"\[env: ([A-Z][A-Z0-9_]*)[=\]]")
HELP_COMMAND = re.compile(r"^  ([a-z][a-z0-9-]*)(?:\s{2,}|$)")


def parse_help(text: str) -> Help:
    """Flags, env-backed variables and subcommands of one clap `--help` text."""
    help_ = Help(text=text)
    help_.flags = set(HELP_FLAG.findall(text))
    help_.env = set(HELP_ENV.findall(re.sub(r"\s+", " ", text)))
    section = None
    for line in text.splitlines():
        if line and not line[0].isspace():
            section = line.rstrip(":").strip().lower()
            continue
        if section == "commands":
            m = HELP_COMMAND.match(line)
            if m and m.group(1) != "help":
                help_.subcommands.add(m.group(1))
    return help_


def run_binary(path: Path, *args: str) -> str:
    """Output of `path args...` run with an empty environment; InputError if it fails."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    try:
        done = subprocess.run([str(path), *args], env=env, capture_output=True, text=True,
                              timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise InputError(f"{path} {' '.join(args)}: {e}") from e
    if done.returncode != 0:
        raise InputError(f"{path} {' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def read_surface(paths: dict[str, Path]) -> tuple[Surface, list[str]]:
    """The help of every binary and its subcommands, and the `--version` problems found."""
    surface, problems = Surface(), []
    for binary, path in paths.items():
        if not os.access(path, os.X_OK):
            raise InputError(f"{path} missing (cargo build -p sfu -p signaling -p loadtest "
                             f"-p recorder --bins)")
        top = parse_help(run_binary(path, "--help"))
        surface.helps[(binary, None)] = top
        for sub in sorted(top.subcommands):
            help_ = parse_help(run_binary(path, sub, "--help"))
            # A subcommand with subcommands of its own (`signaling policy keygen --out F`): a
            # flag after it is checked against what its subcommands accept, together.
            for nested in sorted(help_.subcommands):
                inner = parse_help(run_binary(path, sub, nested, "--help"))
                help_.flags |= inner.flags
                help_.env |= inner.env
            surface.helps[(binary, sub)] = help_
        try:
            version = run_binary(path, "--version").strip()
        except InputError as e:
            problems.append(f"{binary}: does not answer --version ({e})")
            continue
        if not re.fullmatch(rf"{re.escape(binary)} \d+\.\d+\.\d+\S*", version):
            problems.append(f"{binary} --version printed {version!r}, not '{binary} <version>'")
    return surface, problems


# ---- commands --------------------------------------------------------------------------------

def tokenize(text: str) -> list[str]:
    """Shell-like words of one command line; separators stand alone."""
    text = re.sub(r"(\|\||&&|[|;&(){}])", r" \1 ", text)
    try:
        words = shlex.split(text, comments=True)
    except ValueError:  # an unbalanced quote in prose: plain words are good enough
        words = text.split()
    return [w.strip("\"',[]") for w in words]


def program(word: str, at_command_position: bool, aliases: dict[str, str]) -> str | None:
    """Which of our binaries `word` runs: a path ending in it anywhere, its bare name in command
    position, or `$VAR` of an alias."""
    m = re.fullmatch(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", word)
    if m:
        return aliases.get(m.group(1))
    if "/" in word and word.rsplit("/", 1)[1] in BINARIES:
        return word.rsplit("/", 1)[1]
    if at_command_position and word in BINARIES:
        return word
    return None


def invocations(words: list[str], aliases: dict[str, str]) -> list[tuple[str, list[str]]]:
    """(binary, its arguments) for each command of ours among the words."""
    found, i, start = [], 0, True
    while i < len(words):
        word = words[i]
        if word in SEPARATORS:
            start, i = True, i + 1
            continue
        if start and (word in PREFIX_WORDS or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", word)):
            i += 1
            continue
        if start and word == "cargo" and i + 1 < len(words) and words[i + 1] == "run":
            j, binary = i + 2, None
            while j < len(words) and words[j] != "--" and words[j] not in SEPARATORS:
                if words[j] in ("-p", "--package", "--bin") and j + 1 < len(words):
                    if words[j + 1] in BINARIES:
                        binary = words[j + 1]
                j += 1
            if j < len(words) and words[j] == "--" and binary:
                end = j + 1
                while end < len(words) and words[end] not in SEPARATORS:
                    end += 1
                found.append((binary, words[j + 1:end]))
                i, start = end, False
                continue
            i, start = j, False
            continue
        binary = program(word, start, aliases)
        start = False
        if binary:
            end = i + 1
            while end < len(words) and words[end] not in SEPARATORS:
                end += 1
            found.append((binary, words[i + 1:end]))
            i = end
            continue
        i += 1
    return found


def command_uses(path: str, line: int, binary: str, args: list[str],
                 subcommands: dict[str, set[str]]) -> list[Use]:
    """The flags in `binary args...`, each with the (sub)command it belongs to."""
    uses, sub = [], None
    for arg in args:
        if arg == "--":
            break
        m = FLAG.match(arg)
        if m:
            uses.append(Use(path, line, "flag", m.group(1), binary, sub))
        elif sub is None and arg in subcommands.get(binary, ()):
            sub = arg
    return uses


def subcommand_of(binary: str, args: list[str], subcommands: dict[str, set[str]]) -> str | None:
    return next((a for a in args if a in subcommands.get(binary, ())), None)


def text_uses(path: str, line: int, text: str, aliases: dict[str, str],
              subcommands: dict[str, set[str]]) -> list[Use]:
    """Flags of our commands in one command line, and every variable of ours named in it."""
    uses = []
    for binary, args in invocations(tokenize(text), aliases):
        uses += command_uses(path, line, binary, args, subcommands)
    uses += env_uses(path, line, text)
    return uses


def env_uses(path: str, line: int, text: str, binary: str | None = None,
             subcommand: str | None = None) -> list[Use]:
    """Our variables named in `text`; those of `binary` (and `RUST_LOG`) tied to its command."""
    return [Use(path, line, "env", name, binary if _env_binary(name) in (None, binary) else None,
                subcommand if _env_binary(name) in (None, binary) else None)
            for name in ENV_NAME.findall(text) if name not in SCRIPT_VARIABLES]


def _env_binary(name: str) -> str | None:
    return next((b for p, b in ENV_PREFIXES.items() if name.startswith(p)), None)


def logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) with backslash continuations joined."""
    out, buffer, first = [], "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        if not buffer:
            first = number
        if raw.rstrip().endswith("\\"):
            buffer += raw.rstrip()[:-1] + " "
            continue
        out.append((first, buffer + raw))
        buffer = ""
    if buffer:
        out.append((first, buffer))
    return out


# ---- file kinds ------------------------------------------------------------------------------

def markdown_uses(path: str, text: str, subcommands: dict[str, set[str]]) -> list[Use]:
    """Fenced blocks are shell; outside them, code spans are commands, and the rows of a table
    under a `**`binary subcommand`**` line are that command's settings."""
    aliases = {m.group(1): m.group(2) for m in ALIAS.finditer(text)}
    uses: list[Use] = []
    lines = text.splitlines()
    prose = []  # lines outside fences, fences blanked (keeps line numbers)
    in_fence = False
    fence_lines: list[tuple[int, str]] = []
    for number, line in enumerate(lines, 1):
        if line.lstrip().startswith("```"):
            if in_fence:
                uses += _shell_block(path, fence_lines, aliases, subcommands)
                fence_lines = []
            in_fence = not in_fence
            prose.append("")
            continue
        if in_fence:
            fence_lines.append((number, line))
            prose.append("")
        else:
            prose.append(line)

    context: tuple[str, str | None] | None = None
    for number, line in enumerate(prose, 1):
        if line.startswith("#"):
            context = None
        m = BOLD_CONTEXT.match(line)
        if m:
            words = m.group(1).split()
            if words and words[0] in BINARIES:
                context = (words[0], subcommand_of(words[0], words[1:], subcommands))
        if line.startswith("|") and context:
            for span in CODE_SPAN.findall(line):
                for part in span.split(","):
                    flag = FLAG.match(part.strip().split(" ")[0])
                    if flag:
                        uses.append(Use(path, number, "flag", flag.group(1), *context,
                                        origin="table"))
            uses += [replace(u, origin="table") if u.binary else u
                     for u in env_uses(path, number, line, *context)]
        else:
            uses += env_uses(path, number, line)

    # Code spans may wrap across lines inside a paragraph.
    joined = "\n".join(prose)
    for m in re.finditer(r"`([^`]+)`", joined):
        span = m.group(1)
        if "\n\n" in span:
            continue
        number = joined.count("\n", 0, m.start()) + 1
        for binary, args in invocations(tokenize(span.replace("\n", " ")), aliases):
            uses += command_uses(path, number, binary, args, subcommands)
    return uses


def _shell_block(path: str, block: list[tuple[int, str]], aliases: dict[str, str],
                 subcommands: dict[str, set[str]]) -> list[Use]:
    uses = []
    if not block:
        return uses
    first = block[0][0]
    text = "\n".join(line for _, line in block)
    for offset, line in logical_lines(text):
        uses += text_uses(path, first + offset - 1, line, aliases, subcommands)
    return uses


def dockerfile_uses(path: str, text: str, subcommands: dict[str, set[str]]) -> list[Use]:
    """`ENTRYPOINT` + `CMD` form the command; `ENV` names are that command's settings."""
    entry: tuple[int, list[str]] | None = None
    cmd: tuple[int, list[str]] | None = None
    env_lines, uses = [], []
    for number, line in logical_lines(text):
        instruction, _, rest = line.strip().partition(" ")
        words = _exec_form(rest)
        if instruction.upper() == "ENTRYPOINT":
            entry = (number, words)
        elif instruction.upper() == "CMD":
            cmd = (number, words)
        elif instruction.upper() == "ENV":
            env_lines.append((number, rest))
        else:
            uses += env_uses(path, number, line)
    binary, sub = None, None
    if entry and entry[1] and program(entry[1][0], True, {}):
        binary = program(entry[1][0], True, {})
        uses += command_uses(path, entry[0], binary, entry[1][1:], subcommands)
        if cmd:
            uses += command_uses(path, cmd[0], binary, entry[1][1:] + cmd[1], subcommands)
        sub = subcommand_of(binary, entry[1][1:] + (cmd[1] if cmd else []), subcommands)
    for number, rest in env_lines:
        uses += env_uses(path, number, rest, binary, sub)
    return uses


def _exec_form(rest: str) -> list[str]:
    rest = rest.strip()
    if rest.startswith("["):
        try:
            return [str(w) for w in json.loads(rest)]
        except json.JSONDecodeError:
            pass
    return tokenize(rest)


def yaml_uses(path: str, text: str, subcommands: dict[str, set[str]]) -> list[Use]:
    """Containers (Kubernetes) and services (compose) whose image is one of our binaries: their
    `args`/`command` flags and `env`/`environment` names, checked against that command. Every
    other line is read as text (comments, hooks such as `exec: command: [.../sfu, drain]`)."""
    uses = []
    try:
        documents = list(yaml.compose_all(text))
    except yaml.YAMLError as e:
        raise InputError(f"{path}: {e}") from e
    for document in documents:
        if document is not None:
            uses += _yaml_node_uses(path, document, subcommands)
    for number, line in enumerate(text.splitlines(), 1):
        uses += text_uses(path, number, line, {}, subcommands)
    return uses


def _scalar(node: yaml.Node | None) -> str | None:
    return str(node.value) if isinstance(node, yaml.ScalarNode) else None


def _yaml_node_uses(path: str, node: yaml.Node, subcommands: dict[str, set[str]]) -> list[Use]:
    uses: list[Use] = []
    if isinstance(node, yaml.SequenceNode):
        for item in node.value:
            uses += _yaml_node_uses(path, item, subcommands)
        return uses
    if not isinstance(node, yaml.MappingNode):
        return uses
    fields = {_scalar(k): v for k, v in node.value}
    binary = _workload_binary(fields)
    if binary:
        args_node = fields.get("args") or fields.get("command")
        args: list[tuple[int, str]] = []
        if isinstance(args_node, yaml.SequenceNode):
            args = [(n.start_mark.line + 1, str(n.value)) for n in args_node.value
                    if isinstance(n, yaml.ScalarNode)]
        elif isinstance(args_node, yaml.ScalarNode):
            args = [(args_node.start_mark.line + 1, w) for w in tokenize(args_node.value)]
        words = [w for _, w in args]
        if words and program(words[0], True, {}) == binary:
            args, words = args[1:], words[1:]
        sub = subcommand_of(binary, words, subcommands)
        current = None
        for line, word in args:
            m = FLAG.match(word)
            if word == "--":
                break
            if m:
                uses.append(Use(path, line, "flag", m.group(1), binary, current))
            elif current is None and word in subcommands.get(binary, ()):
                current = word
        for name_node, line in _env_names(fields.get("env") or fields.get("environment")):
            uses += env_uses(path, line, name_node, binary, sub)
    for _, value in node.value:
        uses += _yaml_node_uses(path, value, subcommands)
    return uses


def _workload_binary(fields: dict[str | None, yaml.Node]) -> str | None:
    """Our binary run by a container/service mapping: its image, its Dockerfile or (in a
    strategic-merge patch without an image) its container name."""
    image = _scalar(fields.get("image"))
    if image:
        name = image.rsplit("/", 1)[-1].split(":", 1)[0].split("@", 1)[0]
        return name if name in BINARIES else None
    build = fields.get("build")
    if isinstance(build, yaml.MappingNode):
        dockerfile = _scalar({_scalar(k): v for k, v in build.value}.get("dockerfile"))
        if dockerfile:
            name = dockerfile.rsplit("/", 1)[-1].removesuffix(".Dockerfile")
            return name if name in BINARIES else None
    name = _scalar(fields.get("name"))
    if name in BINARIES and ("env" in fields or "args" in fields):
        return name
    return None


def _env_names(node: yaml.Node | None) -> list[tuple[str, int]]:
    """(variable name, line) of a Kubernetes `env:` list or a compose `environment:`."""
    out = []
    if isinstance(node, yaml.MappingNode):
        out = [(str(k.value), k.start_mark.line + 1) for k, _ in node.value]
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            if isinstance(item, yaml.MappingNode):
                fields = {_scalar(k): v for k, v in item.value}
                name = fields.get("name")
                if isinstance(name, yaml.ScalarNode):
                    out.append((str(name.value), name.start_mark.line + 1))
            elif isinstance(item, yaml.ScalarNode):
                out.append((str(item.value).split("=", 1)[0], item.start_mark.line + 1))
    return out


def env_file_uses(path: str, text: str) -> list[Use]:
    return [u for number, line in enumerate(text.splitlines(), 1)
            for u in env_uses(path, number, line)]


def file_uses(path: Path, subcommands: dict[str, set[str]], root: Path = ROOT) -> list[Use]:
    """Every use in one file, the most specific one kept when a line names a thing twice."""
    text = path.read_text()
    shown = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
    name = path.name
    if name.endswith(".md"):
        uses = markdown_uses(shown, text, subcommands)
    elif name.endswith("Dockerfile"):
        uses = dockerfile_uses(shown, text, subcommands)
    elif name.endswith((".yaml", ".yml")):
        uses = yaml_uses(shown, text, subcommands)
    else:
        uses = env_file_uses(shown, text)
    best: dict[tuple, Use] = {}
    for use in uses:
        # A flag may be given twice on a line (before and after the subcommand); a variable is
        # one setting however often its line is read.
        key = (use.path, use.line, use.kind, use.name)
        if use.kind == "flag":
            key += (use.binary, use.subcommand)
        old = best.get(key)
        if old is None or _specificity(use) > _specificity(old):
            best[key] = use
    return sorted(best.values(), key=lambda u: (u.line, u.kind, u.name, u.binary or "",
                                                 u.subcommand or ""))


def _specificity(use: Use) -> int:
    return (use.binary is not None) + (use.subcommand is not None)


def default_files(root: Path = ROOT) -> list[Path]:
    """deploy/ (guide, compose, manifests, Dockerfiles, env.example), docs/*.md, README.md."""
    deploy = root / "deploy"
    files = [p for p in deploy.rglob("*") if p.is_file() and (
        p.suffix in (".md", ".yaml", ".yml") or p.name.endswith("Dockerfile")
        or p.name == "env.example")]
    files += (root / "docs").rglob("*.md")
    files.append(root / "README.md")
    return sorted(set(files))


# ---- the check -------------------------------------------------------------------------------

def problems(uses: list[Use], surface: Surface) -> list[str]:
    """One line per flag or variable the named command does not accept."""
    out = []
    for use in uses:
        if use.kind == "flag":
            if use.name in ALWAYS_ACCEPTED:
                continue
            help_ = surface.helps.get((use.binary, use.subcommand))
            if help_ is None or use.name not in help_.flags:
                out.append(f"{use.where}: --{use.name} is not accepted by `{use.command}` "
                           f"(its --help does not list it)")
            continue
        binary = use.binary or _env_binary(use.name)
        if use.name == "RUST_LOG":
            helps = surface.of(binary, use.subcommand) if binary else list(surface.helps.values())
            if not any("RUST_LOG" in h.text for h in helps):
                where = f"`{use.command}`" if binary else "any binary"
                out.append(f"{use.where}: RUST_LOG is not mentioned in the --help of {where}")
            continue
        helps = surface.of(binary, use.subcommand)
        if not any(use.name in h.env for h in helps):
            command = use.command if use.binary else binary
            out.append(f"{use.where}: {use.name} is not read by `{command}` "
                       f"(no [env: {use.name}=] in its --help)")
    return out


def table_gaps(uses: list[Use], surface: Surface) -> list[str]:
    """A settings table must list every flag and variable its command's --help has."""
    tables: dict[tuple[str, str, str | None], list[Use]] = {}
    for use in uses:
        if use.origin == "table":
            tables.setdefault((use.path, use.binary, use.subcommand), []).append(use)
    out = []
    for (path, binary, sub), rows in tables.items():
        help_ = surface.helps.get((binary, sub))
        if help_ is None:
            continue
        first = min(u.line for u in rows)
        flags = {u.name for u in rows if u.kind == "flag"}
        env = {u.name for u in rows if u.kind == "env"}
        command = f"{binary} {sub}" if sub else binary
        for name in sorted(help_.flags - STANDARD_FLAGS - flags):
            out.append(f"{path}:{first}: the `{command}` table lacks --{name}, which its --help lists")
        for name in sorted(help_.env - env):
            out.append(f"{path}:{first}: the `{command}` table lacks {name}, which its --help lists")
    return out


def binary_paths(root: Path = ROOT) -> dict[str, Path]:
    default = root / "target" / "debug"
    return {b: Path(os.environ.get(f"{b.upper()}_BIN", default / b)) for b in BINARIES}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--list", action="store_true", help="print the uses found, check nothing")
    args = parser.parse_args(argv)
    files = args.files or default_files()
    try:
        surface, version_problems = read_surface(binary_paths())
        uses = [u for f in files for u in file_uses(f.resolve(), surface.subcommands())]
    except InputError as e:
        print(f"cli_surface: {e}", file=sys.stderr)
        return 2
    if args.list:
        for use in uses:
            shown = f"--{use.name}" if use.kind == "flag" else use.name
            print(f"{use.where}: {shown} ({use.command if use.binary else 'by prefix'})")
        return 0
    found = version_problems + problems(uses, surface) + table_gaps(uses, surface)
    for line in found:
        print(line)
    flags = sum(u.kind == "flag" for u in uses)
    print(f"{len(found)} problems; {flags} flags and {len(uses) - flags} variables in "
          f"{len(files)} files checked against {len(surface.helps)} --help texts")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
