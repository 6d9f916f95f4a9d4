/**
 * The config file (`--config FILE` / `AGENTWATCH_CONFIG`): per-detection enablement, parameters,
 * severity and response mode; global lists; response guards. Validated by
 * `schemas/config.schema.json`, then checked against the rules: an unknown detection id or
 * parameter name, or a parameter of another type than the rule's default, is refused with the file
 * and the path inside it.
 */
import Ajv from 'ajv';
import { readFileSync } from 'node:fs';
import { ConfigError, type LocatedProblem } from '../errors';
import configSchema from '../../schemas/config.schema.json';
import type { EngineConfig, ParameterValue, RuleDocument } from './types';
import { parseLocated, pointerOf, problemsFromAjv } from './yamlFile';

const validateConfig = new Ajv({ allErrors: true, strict: false, allowUnionTypes: true, verbose: true }).compile(configSchema);

/** Parses and validates config text; throws ConfigError listing every problem. */
export function parseEngineConfig(file: string, text: string): EngineConfig {
  const document = parseLocated(file, text);
  if (document.problems.length) throw new ConfigError(document.problems);
  const value = document.value ?? {};
  if (!validateConfig(value)) throw new ConfigError(problemsFromAjv(validateConfig.errors ?? [], document));
  return { ...(value as EngineConfig), file, locate: document.lineOf };
}

export function loadEngineConfig(file: string): EngineConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError([{ file, path: '/', message: `cannot read the config file: ${(error as Error).message}` }], { cause: error });
  }
  return parseEngineConfig(file, text);
}

function kindOf(value: ParameterValue | unknown): string {
  return Array.isArray(value) ? 'list' : typeof value;
}

/** Problems of a config against the rule documents it tunes (every rule file, enabled or not). */
export function configProblems(config: EngineConfig, documents: ReadonlyMap<string, RuleDocument>): LocatedProblem[] {
  const problems: LocatedProblem[] = [];
  const file = config.file ?? 'config';
  const at = (path: (string | number)[], message: string) => problems.push({ file, path: pointerOf(path), line: config.locate?.(path), message });
  for (const [id, tuning] of Object.entries(config.detections ?? {})) {
    const document = documents.get(id);
    if (!document) {
      at(['detections', id], `unknown detection id ${JSON.stringify(id)}; known: ${[...documents.keys()].sort().join(', ') || '(none loaded)'}`);
      continue;
    }
    const defaults = (document.parameters as Record<string, ParameterValue> | undefined) ?? {};
    for (const [name, value] of Object.entries(tuning.parameters ?? {})) {
      if (!(name in defaults)) {
        at(['detections', id, 'parameters', name], `unknown parameter ${JSON.stringify(name)} of ${id}; expected one of ${Object.keys(defaults).join(', ') || '(it has none)'}`);
      } else if (kindOf(value) !== kindOf(defaults[name])) {
        at(['detections', id, 'parameters', name], `expected a ${kindOf(defaults[name])} like the rule's default ${JSON.stringify(defaults[name])}, got ${JSON.stringify(value)}`);
      }
    }
  }
  return problems;
}
