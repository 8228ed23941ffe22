#!/bin/sh
# Writes a help2man --include file with the --help of every ztsegctl
# subcommand, so its man page documents each one and cannot drift from it.
# The list of subcommands comes from ztsegctl itself (completion commands).
# usage: subcommands.sh ZTSEGCTL OUTPUT
set -eu
ctl=$1
out=$2
dir=$(dirname "$ctl")
# Run by name, so usage lines say "ztsegctl", not the build path.
PATH="$dir:$PATH"
export PATH
{
    echo '[COMMANDS]'
    echo 'Each command takes --help; what it prints:'
    ztsegctl completion commands | while IFS= read -r path; do
        echo ".SS \"ztsegctl $path\""
        echo '.nf'
        # shellcheck disable=SC2086  # the path is words: "fleet status"
        ztsegctl $path --help | sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"
        echo '.fi'
    done
} >"$out.tmp"
mv "$out.tmp" "$out"
