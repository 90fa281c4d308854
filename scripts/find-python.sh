#!/usr/bin/env bash
# Prints an interpreter matching the Lambda runtime (python3.12) when one exists,
# else the newest python3 >= 3.11 on this machine.
set -euo pipefail
for candidate in python3.12 "$(ls -d /root/.pyenv/versions/3.12.* 2>/dev/null | tail -1)/bin/python3.12" python3.13 python3; do
  if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1 \
     && "$candidate" -c 'import sys; assert sys.version_info >= (3, 11)' >/dev/null 2>&1; then
    command -v "$candidate"
    exit 0
  fi
done
echo "no python >= 3.11 found" >&2
exit 1
