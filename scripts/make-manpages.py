#!/usr/bin/env python3
"""Man pages for `backdrop` from swift-argument-parser's own description of the command line.

    backdrop --experimental-dump-help > help.json
    make-manpages.py help.json OUTDIR      # writes backdrop.1, backdrop-compose.1, ...

One page per command (git's style: `man backdrop-compose`), so the pages never drift from the
options the launcher really has.
"""
import datetime
import json
import os
import sys


def roff(text):
    """Escapes text for roff: backslashes, and a leading dot or quote on a line."""
    text = (text or "").replace("\\", "\\e")
    lines = []
    for line in text.split("\n"):
        if line.startswith((".", "'")):
            line = "\\&" + line
        lines.append(line)
    return "\n".join(lines)


def flag_names(argument):
    names = []
    for name in argument.get("names", []):
        prefix = "--" if name.get("kind") == "long" else "-"
        names.append(prefix + name["name"])
    return names


def synopsis(path, command):
    parts = [" ".join(path)]
    for argument in command.get("arguments", []):
        if not argument.get("shouldDisplay", True):
            continue
        value = argument.get("valueName", "value")
        if argument.get("kind") == "positional":
            text = "<" + value + ">"
        else:
            names = flag_names(argument)
            if not names:
                continue
            text = names[0] + ("" if argument.get("kind") == "flag" else " <" + value + ">")
        parts.append(("[" + text + "]") if argument.get("isOptional") else text)
    if command.get("subcommands"):
        parts.append("<subcommand>")
    return " ".join(parts)


def page(path, command, date):
    name = "-".join(path)
    out = [
        '.TH "%s" 1 "%s" "Backdrop" "User Commands"' % (name.upper(), date),
        ".SH NAME",
        "%s \\- %s" % (name, roff(command.get("abstract", ""))),
        ".SH SYNOPSIS",
        ".B " + roff(synopsis(path, command)),
    ]
    if command.get("discussion"):
        out += [".SH DESCRIPTION", roff(command["discussion"])]
    arguments = [a for a in command.get("arguments", []) if a.get("shouldDisplay", True)]
    if arguments:
        out.append(".SH OPTIONS")
        for argument in arguments:
            value = argument.get("valueName", "value")
            if argument.get("kind") == "positional":
                label = "<" + value + ">"
            else:
                label = ", ".join(flag_names(argument))
                if argument.get("kind") == "option":
                    label += " <" + value + ">"
            out += [".TP", "\\fB" + roff(label) + "\\fR"]
            text = argument.get("abstract", "")
            if argument.get("defaultValue") not in (None, ""):
                text += " (default: %s)" % argument["defaultValue"]
            if argument.get("discussion"):
                text += "\n" + argument["discussion"]
            out.append(roff(text))
    subcommands = command.get("subcommands", [])
    if subcommands:
        out.append(".SH COMMANDS")
        for sub in subcommands:
            out += [".TP", "\\fB" + roff(sub["commandName"]) + "\\fR",
                    roff(sub.get("abstract", "")) + " See \\fB" + "-".join(path + [sub["commandName"]]) + "\\fR(1)."]
    if len(path) > 1:
        out += [".SH SEE ALSO", "\\fB%s\\fR(1)" % "-".join(path[:-1])]
    return "\n".join(out) + "\n"


def walk(path, command, outdir, date, written):
    name = "-".join(path)
    with open(os.path.join(outdir, name + ".1"), "w") as handle:
        handle.write(page(path, command, date))
    written.append(name + ".1")
    for sub in command.get("subcommands", []):
        if sub.get("commandName") == "help":
            continue
        walk(path + [sub["commandName"]], sub, outdir, date, written)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: make-manpages.py HELP.json OUTDIR")
    with open(sys.argv[1]) as handle:
        root = json.load(handle)["command"]
    os.makedirs(sys.argv[2], exist_ok=True)
    # A reproducible date: SOURCE_DATE_EPOCH when set (Debian's convention), else today.
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc) if epoch else datetime.datetime.now(datetime.timezone.utc)
    written = []
    walk([root["commandName"]], root, sys.argv[2], when.strftime("%Y-%m-%d"), written)
    print("man pages: " + " ".join(written))


if __name__ == "__main__":
    main()
