// Server-Sent Events parsed from a fetch() body (Node 20 has no
// EventSource, and EventSource cannot send Last-Event-ID on demand or an
// Authorization header). WHATWG rules: data lines join with "\n", a blank
// line dispatches, ":" starts a comment.

export class SseParser {
  constructor(lastId = null) {
    this.lastId = lastId;
    this.kind = '';
    this.data = [];
    this.id = null;
  }

  /** Feeds one line (without its newline); returns an event or null. */
  line(line) {
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (line === '') {
      if (this.data.length === 0 && this.kind === '') return null;
      const raw = this.data.join('\n');
      const kind = this.kind || 'message';
      this.kind = '';
      this.data = [];
      if (this.id !== null) this.lastId = this.id;
      this.id = null;
      let data = raw;
      try { data = raw === '' ? null : JSON.parse(raw); } catch { /* text event */ }
      return { kind, data, id: this.lastId };
    }
    if (line.startsWith(':')) return null;
    const colon = line.indexOf(':');
    const name = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (name === 'data') this.data.push(value);
    else if (name === 'event') this.kind = value;
    else if (name === 'id' && !value.includes('\0')) this.id = value;
    return null;
  }
}

/** Async-iterates the events of a fetch Response body. */
export async function* sseEvents(response, parser) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const ev = parser.line(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        if (ev) yield ev;
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}
