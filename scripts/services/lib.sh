# placeholder
log() { printf '[services %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
elapsed_since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }
: "${OPENSEARCH_VERSION:=2.19.3}"
: "${OPENSEARCH_USER:=opensearch}"
: "${CHAT_SVC_CACHE_DIR:=${XDG_CACHE_HOME:-$HOME/.cache}/chat-backend}"
