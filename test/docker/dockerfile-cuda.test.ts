/**
 * Dockerfile.cuda cannot be built here (no Docker engine, no network beyond the registries), so
 * it is parsed and linted instead: the VS Code Docker linter (dockerfile-utils) plus the
 * hadolint-style rules we rely on, and a check that every path it copies exists in the repo.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DockerfileParser, type Copy } from 'dockerfile-ast';
import { validate } from 'dockerfile-utils';
import { describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const text = fs.readFileSync(path.join(root, 'Dockerfile.cuda'), 'utf8');
const df = DockerfileParser.parse(text);
const instructions = df.getInstructions();

describe('Dockerfile.cuda', () => {
  it('has no syntax or lint errors', () => {
    const problems = validate(text).filter((p) => p.severity === 1);
    expect(problems.map((p) => `${p.range.start.line + 1}: ${p.message}`)).toEqual([]);
  });

  it('builds the CUDA kernels with nvcc from a CUDA 13 devel image and runs on the runtime image', () => {
    const froms = df.getFROMs().map((f) => f.getImageName() + ':' + (f.getImageTag() ?? ''));
    expect(froms).toContain('nvidia/cuda:${CUDA_VERSION}-devel-${UBUNTU}');
    expect(froms).toContain('nvidia/cuda:${CUDA_VERSION}-runtime-${UBUNTU}');
    const args = Object.fromEntries(df.getARGs().map((a) => [a.getProperty()!.getName(), a.getProperty()!.getValue()]));
    expect(args.CUDA_VERSION).toMatch(/^13\./);
    expect(text).toContain('segtensor_cuda.node');
    expect(text).toMatch(/@tensorflow\/tfjs-node-gpu@4\.22\.0/);
  });

  it('copies only from stages it defines, and paths that exist', () => {
    const stages = new Set(df.getFROMs().map((f) => f.getBuildStage()).filter(Boolean));
    for (const ins of instructions) {
      if (ins.getKeyword() !== 'COPY') continue;
      const args = ins.getArguments().map((a) => a.getValue());
      const from = (ins as Copy).getFromFlag()?.getValue();
      if (from) {
        expect(stages.has(from), `COPY --from=${from}`).toBe(true);
        continue;
      }
      for (const src of args.slice(0, -1)) expect(fs.existsSync(path.join(root, src)), `COPY ${src}`).toBe(true);
    }
  });

  it('follows the hadolint rules we care about', () => {
    for (const ins of instructions) {
      const line = ins.getTextContent();
      if (ins.getKeyword() === 'RUN' && /apt-get install/.test(line)) {
        expect(line, 'DL3015: --no-install-recommends').toMatch(/--no-install-recommends/);
        expect(line, 'DL3009: remove apt lists').toMatch(/rm -rf \/var\/lib\/apt\/lists/);
        expect(line, 'DL3014: -y').toMatch(/install -y/);
      }
      if (ins.getKeyword() === 'FROM') expect(line, 'DL3007: no latest tag').not.toMatch(/:latest\b/);
    }
    const users = instructions.filter((i) => i.getKeyword() === 'USER');
    expect(users.length, 'DL3002: the last USER is not root').toBeGreaterThan(0);
    expect(users[users.length - 1].getTextContent()).not.toMatch(/root/);
  });
});
