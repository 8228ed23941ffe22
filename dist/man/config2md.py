#!/usr/bin/env python3
"""Turns a commented default config (dist/*.yaml) into a pandoc man page source.

The default config is the source of truth for every field: each field's
comment becomes its description, its value the default. A comment block that
ends in a commented-out `key: value` documents a field that is unset by
default (the value is an example). Nested sections (`api:`) give dotted names
(`api.tls.cert`). The whole file is reproduced at the end.

usage: config2md.py CONFIG OUTPUT NAME SECTION VERSION SUMMARY SEE_ALSO
"""
import re
import sys

FIELD = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][A-Za-z0-9_]*):(?P<rest>.*)$")
COMMENTED_FIELD = re.compile(r"^(?P<key>[A-Za-z_][A-Za-z0-9_]*): (?P<value>.*)$")


def split_comment(rest):
    """'value  # comment' -> (value, comment); '#' inside quotes is kept."""
    quote = None
    for i, c in enumerate(rest):
        if quote:
            if c == quote:
                quote = None
        elif c in "\"'":
            quote = c
        elif c == "#" and (i == 0 or rest[i - 1] in " \t"):
            return rest[:i].strip(), rest[i + 1:].strip()
    return rest.strip(), ""


def escape(text):
    """Markdown-escapes text outside `code spans` (pandoc would eat <fleet>)."""
    parts = text.split("`")
    for i in range(0, len(parts), 2):
        parts[i] = re.sub(r"([\\*_<>\[\]|#$~^])", r"\\\1", parts[i])
    return "`".join(parts)


def code(value):
    return "`" + value + "`" if "`" not in value else value


class Field:
    def __init__(self, name, value, text, unset=False):
        self.name, self.value, self.unset = name, value, unset
        self.text = list(text)


def parse(lines):
    intro, fields, pending = [], [], []
    stack = []  # (indent, name) of the enclosing sections
    last = None
    saw_blank = False
    for raw in lines:
        line = raw.rstrip("\n")
        stripped = line.strip()
        if not stripped:
            if pending:
                # A comment block followed by a blank line: the file's intro,
                # a commented-out field, or more about the field above it.
                m = COMMENTED_FIELD.match(pending[-1])
                if m:
                    name = ".".join([n for _, n in stack] + [m.group("key")])
                    fields.append(Field(name, m.group("value"), pending[:-1], unset=True))
                elif last is None:
                    intro.extend(pending)
                else:
                    last.text.extend(pending)
                pending = []
            saw_blank = True
            continue
        if stripped.startswith("#"):
            comment = stripped[1:].strip()
            indent = len(line) - len(line.lstrip())
            # A comment indented past its field continues that field's own
            # trailing comment (a wrapped line).
            if last is not None and not saw_blank and not pending and indent > 8:
                last.text.append(comment)
            else:
                pending.append(comment)
            continue
        m = FIELD.match(line)
        if not m:
            raise SystemExit(f"config2md: cannot read line: {line!r}")
        indent = len(m.group("indent"))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        if indent == 0:
            stack = []
        value, trailing = split_comment(m.group("rest"))
        name = ".".join([n for _, n in stack] + [m.group("key")])
        text = pending + ([trailing] if trailing else [])
        pending = []
        saw_blank = False
        if value == "":
            fields.append(Field(name, None, text))  # a section
            stack.append((indent, m.group("key")))
            last = fields[-1]
        else:
            fields.append(Field(name, value, text))
            last = fields[-1]
    if pending and last is not None:
        last.text.extend(pending)
    return intro, fields


def main():
    if len(sys.argv) != 8:
        raise SystemExit(__doc__)
    path, output, name, section, version, summary, see_also = sys.argv[1:]
    with open(path) as f:
        lines = f.readlines()
    intro, fields = parse(lines)
    out = []
    out.append(f"% {name.upper()}({section}) ztseg {version} | ztseg configuration")
    out.append("")
    out.append("# NAME")
    out.append("")
    out.append(escape(f"{name} - {summary}"))
    out.append("")
    out.append("# DESCRIPTION")
    out.append("")
    out.append(escape(" ".join(intro)))
    out.append("")
    out.append("This page is generated from the default configuration file installed as "
               f"`/etc/ztseg/{name}`: that commented file is the reference for every field. "
               "The daemon reads it with `--config`; after changing it, send SIGHUP "
               "(`systemctl reload`) or restart the service.")
    out.append("")
    out.append("# FIELDS")
    out.append("")
    for f in fields:
        if f.value is None:
            out.append(f"**{escape(f.name)}**")
            text = escape(" ".join(f.text)).rstrip(".")
            out.append(":   " + (text + " (a section; its fields follow)." if text else
                                 "A section; its fields follow."))
        else:
            what = "unset by default; example" if f.unset else "default"
            out.append(f"**{escape(f.name)}** ({what}: {code(f.value)})")
            out.append(":   " + (escape(" ".join(f.text)) if f.text else "(no comment)"))
        out.append("")
    out.append("# DEFAULT FILE")
    out.append("")
    out.append("```yaml")
    out.extend(l.rstrip("\n") for l in lines)
    out.append("```")
    out.append("")
    out.append("# SEE ALSO")
    out.append("")
    out.append(escape(see_also))
    out.append("")
    with open(output, "w") as f:
        f.write("\n".join(out))


if __name__ == "__main__":
    main()
