// Decoded preview frames keyed by URL, fetched a few at a time, for scrubbing and playback.

const CAPACITY = 96; // 720p bitmaps are ~3.7 MB each on the GPU side
const PARALLEL = 3;

export class FrameCache {
  constructor() {
    this.entries = new Map(); // url -> Promise<ImageBitmap>, in insertion (LRU) order
    this.queue = [];
    this.active = 0;
  }

  clear() {
    for (const entry of this.entries.values()) entry.then((bitmap) => bitmap.close()).catch(() => {});
    this.entries.clear();
    this.queue = [];
  }

  /** The decoded frame at `url` (fetched now if it is not cached or queued). */
  get(url) {
    const cached = this.entries.get(url);
    if (cached) {
      this.entries.delete(url);
      this.entries.set(url, cached);
      return cached;
    }
    return this._load(url, true);
  }

  /** Start loading `urls` in the background, at most PARALLEL requests at a time. */
  prefetch(urls) {
    for (const url of urls) if (!this.entries.has(url)) this._load(url, false);
  }

  _load(url, urgent) {
    let settle;
    const promise = new Promise((resolve, reject) => (settle = { resolve, reject }));
    promise.catch(() => this.entries.delete(url));
    this.entries.set(url, promise);
    const task = { url, settle };
    urgent ? this.queue.unshift(task) : this.queue.push(task);
    this._pump();
    while (this.entries.size > CAPACITY) {
      const [oldest, entry] = this.entries.entries().next().value;
      this.entries.delete(oldest);
      entry.then((bitmap) => bitmap.close()).catch(() => {});
    }
    return promise;
  }

  _pump() {
    while (this.active < PARALLEL && this.queue.length) {
      const { url, settle } = this.queue.shift();
      this.active += 1;
      fetch(url, { credentials: "same-origin" })
        .then(async (response) => {
          if (!response.ok) {
            const body = await response.json().catch(() => null);
            throw new Error(body && body.error ? body.error.message : `frame request failed (${response.status})`);
          }
          return createImageBitmap(await response.blob());
        })
        .then(settle.resolve, settle.reject)
        .finally(() => {
          this.active -= 1;
          this._pump();
        });
    }
  }
}
