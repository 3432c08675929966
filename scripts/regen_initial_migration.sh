#!/usr/bin/env bash
# Development only (before the first production deployment): rebuild the initial migration
# from the models on a scratch SQLite database.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
rm -f "$here"/survey_app/migrations/versions/*.py
cd "$tmp"
SURVEY_DATABASE_URL="sqlite:///$tmp/m.db" survey db migrate -m "initial schema" >/dev/null
sed -i 's/astext_type=Text()/astext_type=sa.Text()/g' "$here"/survey_app/migrations/versions/*.py
SURVEY_DATABASE_URL="sqlite:///$tmp/m.db" survey db upgrade >/dev/null 2>&1
rm -rf "$tmp"
ls "$here"/survey_app/migrations/versions
