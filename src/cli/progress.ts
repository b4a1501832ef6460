/**
 * Progress for long steps: live lines on a terminal, silence in logs (stderr not a TTY), so
 * nightly job logs hold only the summary. @internal
 */
export interface Progress {
  step(line: string): void;
  live(line: string): void;
  done(): void;
}

export function progress(quiet: boolean): Progress {
  const tty = !quiet && process.stderr.isTTY === true;
  let liveShown = false;
  return {
    step(line) {
      if (!tty) return;
      if (liveShown) process.stderr.write('\r\x1b[K');
      liveShown = false;
      process.stderr.write(line + '\n');
    },
    live(line) {
      if (!tty) return;
      process.stderr.write('\r\x1b[K' + line);
      liveShown = true;
    },
    done() {
      if (tty && liveShown) process.stderr.write('\r\x1b[K');
      liveShown = false;
    },
  };
}
