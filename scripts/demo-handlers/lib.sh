# Shared by the demo handlers (sourced, not run). A handler gets its job's
# payload on stdin and prints its result on stdout; see jobmesh-worker --help.

# progress DONE TOTAL MESSAGE: one progress line on the worker's side channel,
# only when the worker offers one ($JOBMESH_PROGRESS_FD). Older workers do
# not, and then progress is simply not reported.
progress() {
	local fd="${JOBMESH_PROGRESS_FD:-}"
	[[ "$fd" =~ ^[0-9]+$ ]] || return 0
	{ printf 'progress %s %s %s\n' "$1" "$2" "$3" >&"$fd"; } 2>/dev/null || true
}

# field NAME: the string or number value of "NAME" in the JSON payload held in
# $payload. The demo writes its own flat payloads; a real handler would use a
# JSON parser (jq, python3 -c 'import json', ...).
field() {
	local re="\"$1\"[[:space:]]*:[[:space:]]*(\"([^\"]*)\"|([0-9]+|true|false))"
	if [[ "$payload" =~ $re ]]; then
		printf '%s' "${BASH_REMATCH[2]}${BASH_REMATCH[3]}"
	fi
}

# work STEPS MESSAGE...: sleeps 0.2-1.5 s in total (random), split into STEPS
# steps, reporting progress after each; the messages are used in turn.
work() {
	local steps="$1"; shift
	local total_ms=$((200 + RANDOM % 1301))
	local step_ms=$((total_ms / steps))
	local i msgs=("$@")
	for ((i = 1; i <= steps; i++)); do
		sleep "$((step_ms / 1000)).$(printf '%03d' $((step_ms % 1000)))"
		progress "$i" "$steps" "${msgs[(i - 1) % ${#msgs[@]}]}"
	done
	elapsed_ms="$total_ms"
}
