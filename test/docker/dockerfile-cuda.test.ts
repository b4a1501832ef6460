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

  it('keeps @tensorflow/tfjs-node-gpu in the image: nothing prunes it after it is installed, and the build checks it is there', () => {
    expect(tfjsGpuProblems(text)).toEqual([]);
    // The runtime stage takes the build stage's node_modules, where it was installed.
    const copies = instructions.filter((i) => i.getKeyword() === 'COPY' && (i as Copy).getFromFlag()?.getValue() === 'build').map((i) => i.getArguments().map((a) => a.getValue()).join(' '));
    expect(copies).toContain('/app/node_modules ./node_modules');
  });

  it('the check above catches the image that lost tfjs-node-gpu (installed --no-save, then npm prune)', () => {
    const lost = text.replace(
      /RUN npm prune --omit=dev\n(?:#[^\n]*\n)*RUN npm install --no-save --omit=dev --no-audit --no-fund @tensorflow\/tfjs-node-gpu@4\.22\.0\nRUN node -e [^\n]*\n/,
      'RUN npm install --no-save --no-audit --no-fund @tensorflow/tfjs-node-gpu@4.22.0 \\\n && npm prune --omit=dev\n',
    );
    expect(lost).not.toBe(text);
    expect(tfjsGpuProblems(lost)).toEqual([
      'npm prune --omit=dev after the tfjs-node-gpu install removes it (it is not in package.json)',
      'no step after the install checks that @tensorflow/tfjs-node-gpu is present',
    ]);
  });
});

/**
 * What would ship an image without @tensorflow/tfjs-node-gpu: in the stage that installs it, a
 * later npm command that removes packages package.json does not list (prune, ci, uninstall,
 * dedupe, or an install that saves), or no later step that resolves the package.
 */
function tfjsGpuProblems(dockerfile: string): string[] {
  const d = DockerfileParser.parse(dockerfile);
  const stages: string[][] = [];
  for (const ins of d.getInstructions()) {
    if (ins.getKeyword() === 'FROM') stages.push([]);
    else if (ins.getKeyword() === 'RUN' && stages.length) {
      // One RUN's commands, split on && and ;, line continuations joined.
      const body = ins.getTextContent().replace(/^RUN\s+/, '').replace(/\\\n/g, ' ');
      stages[stages.length - 1].push(...body.split(/&&|;/).map((c) => c.trim()).filter(Boolean));
    }
  }
  const stage = stages.find((cmds) => cmds.some((c) => /\bnpm (install|i)\b.*@tensorflow\/tfjs-node-gpu/.test(c)));
  if (!stage) return ['no stage installs @tensorflow/tfjs-node-gpu'];
  const at = stage.findIndex((c) => /\bnpm (install|i)\b.*@tensorflow\/tfjs-node-gpu/.test(c));
  const problems: string[] = [];
  if (!/--no-save/.test(stage[at])) problems.push('the tfjs-node-gpu install must not change package.json (--no-save)');
  for (const c of stage.slice(at + 1)) {
    if (/\bnpm (prune|ci|uninstall|un|rm|remove|dedupe)\b/.test(c) || (/\bnpm (install|i)\b/.test(c) && !/--no-save/.test(c))) {
      problems.push(`${c} after the tfjs-node-gpu install removes it (it is not in package.json)`);
    }
  }
  if (!stage.slice(at + 1).some((c) => /require\.resolve\(['"]@tensorflow\/tfjs-node-gpu/.test(c))) problems.push('no step after the install checks that @tensorflow/tfjs-node-gpu is present');
  return problems;
}
