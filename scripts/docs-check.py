"""Checks every command and example in README.md and docs/: shell commands of the project's own
programs name subcommands and options those programs have (their --help says so), scripts and
paths exist, benches exist; YAML parses, and custom resources validate against the CRD schemas;
XML parses. Commands that need a cluster (kubectl, helm install, curl, yarn) are checked only for
the paths they name.

Usage: docs-check.py   (run after the workspace is built: it calls target/debug binaries)
"""

import functools
import json
import pathlib
import re
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

import jsonschema
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
BINARIES = {
    "elastic-yarn-operator": "elastic-yarn-operator",
    "staticip": "staticip-controller",
    "staticip-controller": "staticip-controller",
    "koordlet-metrics": "koordlet-metrics",
    "guarder": "guarder",
    "hadoop-conf": "hadoop-conf",
}
CLUSTER_TOOLS = {
    "kubectl", "helm", "curl", "yarn", "for", "done", "do", "export", "cd", "docker", "buildah",
}
FENCE = re.compile(r"^```(\w*)\s*$")
problems = []
checked = {"commands": 0, "yaml": 0, "xml": 0, "resources": 0, "images": 0}


def problem(where, message):
    problems.append(f"{where}: {message}")


def blocks(path):
    language, lines, start = None, [], 0
    for number, line in enumerate(path.read_text().splitlines(), 1):
        match = FENCE.match(line.strip())
        if match and language is None:
            language, lines, start = match.group(1) or "text", [], number
        elif line.strip() == "```" and language is not None:
            yield language, "\n".join(lines), start
            language = None
        elif language is not None:
            lines.append(line)


@functools.lru_cache(maxsize=None)
def help_text(binary, path):
    program = ROOT / "target" / "debug" / binary
    if not program.exists():
        return None
    result = subprocess.run([str(program), *path, "--help"], capture_output=True, text=True)
    return result.stdout if result.returncode == 0 else None


def subcommands(text):
    names, inside = set(), False
    for line in text.splitlines():
        if line.startswith("Commands:"):
            inside = True
        elif inside and line and not line.startswith(" "):
            inside = False
        elif inside and line.strip():
            names.add(line.split()[0])
    return names


def check_program(where, binary, words):
    path, helps = [], []
    text = help_text(binary, ())
    if text is None:
        problem(where, f"target/debug/{binary} is missing or has no --help (build first)")
        return
    helps.append(text)
    for word in words:
        if word.startswith("-"):
            flag = word.split("=", 1)[0]
            if flag.startswith("--") and not any(
                re.search(rf"(^|[\s,]){re.escape(flag)}([\s=<,\[]|$)", h, re.M) for h in helps
            ):
                problem(where, f"{binary} {' '.join(path)}: no option {flag}")
        elif word in subcommands(helps[-1]):
            path.append(word)
            text = help_text(binary, tuple(path))
            if text is None:
                problem(where, f"{binary} {' '.join(path)} --help failed")
                return
            helps.append(text)


def check_command(where, words):
    if not words:
        return
    checked["commands"] += 1
    head = words[0]
    if head.startswith("scripts/"):
        script = ROOT / head
        if not script.exists():
            problem(where, f"{head} does not exist")
        elif head == "scripts/simulate":
            check_program(where, "elastic-yarn-operator", ["simulate", *words[1:]])
    elif head == "cargo":
        rest = words[1:]
        package = rest[rest.index("-p") + 1] if "-p" in rest else None
        if rest[:1] == ["run"] and package in BINARIES:
            args = rest[rest.index("--") + 1 :] if "--" in rest else []
            check_program(where, BINARIES[package], args)
        elif rest[:1] == ["bench"] and "--bench" in rest:
            bench = rest[rest.index("--bench") + 1]
            manifest = (ROOT / {"elastic-yarn-operator": "operator"}.get(package, package) / "Cargo.toml").read_text()
            if f'name = "{bench}"' not in manifest:
                problem(where, f"no bench {bench} in {package}")
        elif rest[:1] == ["test"] and "--test" in rest:
            test = rest[rest.index("--test") + 1]
            if not list(ROOT.glob(f"*/tests/{test}.rs")):
                problem(where, f"no test target {test}")
    elif head in BINARIES:
        check_program(where, BINARIES[head], words[1:])
    elif head in CLUSTER_TOOLS:
        for word in words[1:]:
            if word.startswith(("charts/", "docs/", "images/")) and not (ROOT / word).exists():
                problem(where, f"{word} does not exist")


def check_shell(where, text):
    joined = re.sub(r"\\\n\s*", " ", text)
    for line in joined.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        for part in re.split(r";|&&|\|\|", line):
            try:
                words = shlex.split(part)
            except ValueError as error:
                problem(where, f"cannot parse {part!r}: {error}")
                continue
            check_command(where, words)


@functools.lru_cache(maxsize=None)
def crd_schemas():
    schemas = {}
    for path in (ROOT / "charts" / "elastic-yarn" / "crds").glob("*.yaml"):
        crd = yaml.safe_load(path.read_text())
        for version in crd["spec"]["versions"]:
            key = (f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])
            schemas[key] = version["schema"]["openAPIV3Schema"]
    return schemas


def check_yaml(where, text):
    checked["yaml"] += 1
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as error:
        problem(where, f"YAML does not parse: {error}")
        return
    for document in documents:
        if not isinstance(document, dict):
            continue
        key = (document.get("apiVersion"), document.get("kind"))
        if key in crd_schemas():
            checked["resources"] += 1
            try:
                jsonschema.validate(document, crd_schemas()[key])
            except jsonschema.ValidationError as error:
                problem(where, f"{key[1]}: {error.message}")


def check_xml(where, text):
    checked["xml"] += 1
    try:
        ElementTree.fromstring(f"<configuration>{text}</configuration>")
    except ElementTree.ParseError as error:
        problem(where, f"XML does not parse: {error}")


def check_containerfile():
    """images/Containerfile builds what the chart names: every file it copies from the checkout
    exists, every binary it builds is a [[bin]] of the workspace, and every image repository of
    the chart's values is the title of one of its targets."""
    where = "images/Containerfile"
    text = (ROOT / where).read_text()
    joined = re.sub(r"\\\n\s*", " ", text)
    for line in joined.splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from=") for w in words):
            for source in words[1:-1]:
                if source != "." and not (ROOT / source).exists():
                    problem(where, f"COPY {source}: no such file in the checkout")
    declared = set()
    for manifest in ROOT.glob("*/Cargo.toml"):
        declared |= set(re.findall(r'\[\[bin\]\]\s*name = "([^"]+)"', manifest.read_text()))
    for binary in re.findall(r"--bin ([\w-]+)", joined):
        if binary not in declared:
            problem(where, f"--bin {binary}: no such binary in the workspace")
    titles = set(re.findall(r'org\.opencontainers\.image\.title="([^"]+)"', text))
    values = yaml.safe_load((ROOT / "charts" / "elastic-yarn" / "values.yaml").read_text())
    for part, settings in values.items():
        repository = isinstance(settings, dict) and settings.get("image", {}).get("repository")
        if repository and repository not in titles:
            problem(where, f"the chart's {part}.image.repository {repository} is built by no target")
    checked["images"] = len(titles)


def main():
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for path in files:
        for language, text, line in blocks(path):
            where = f"{path.relative_to(ROOT)}:{line}"
            if language in ("sh", "bash", "shell"):
                check_shell(where, text)
            elif language in ("yaml", "yml"):
                check_yaml(where, text)
            elif language == "xml":
                check_xml(where, text)
            elif language == "json":
                try:
                    json.loads(text)
                except ValueError as error:
                    problem(where, f"JSON does not parse: {error}")
    for path in sorted((ROOT / "docs" / "examples").glob("*.yaml")):
        check_yaml(str(path.relative_to(ROOT)), path.read_text())
    check_containerfile()
    if problems:
        print("\n".join(problems), file=sys.stderr)
        sys.exit(1)
    print(
        f"docs check: {checked['commands']} commands, {checked['yaml']} YAML blocks "
        f"({checked['resources']} custom resources), {checked['xml']} XML blocks, "
        f"{checked['images']} image targets: all valid"
    )


if __name__ == "__main__":
    main()
