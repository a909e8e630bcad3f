#!/usr/bin/env bash
# hack/jaeger.sh [path|build|version]: see hack/tool.sh.
exec "$(dirname "${BASH_SOURCE[0]}")/tool.sh" jaeger "$@"
