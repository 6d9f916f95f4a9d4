/**
 * Per-family JSON Schema validation of raw records (`schemas/records/*.schema.json`), compiled once
 * with ajv. The schemas type only the fields agentwatch reads and accept every shape real exports
 * send; a failure means the record is malformed where it matters.
 */
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import type { RecordFamily } from '../normalize/categories';
import agentsInfoSchema from '../../schemas/records/agents-info.schema.json';
import auditSchema from '../../schemas/records/audit.schema.json';
import envelopeSchema from '../../schemas/records/envelope.schema.json';
import graphActivitySchema from '../../schemas/records/graph-activity.schema.json';
import riskEventSchema from '../../schemas/records/risk-event.schema.json';
import riskyPrincipalSchema from '../../schemas/records/risky-principal.schema.json';
import signInSchema from '../../schemas/records/signin.schema.json';
import { compilePrecheck } from './precheck';

const FAMILY_SCHEMAS: Readonly<Record<RecordFamily, object>> = {
  signIn: signInSchema,
  audit: auditSchema,
  riskEvent: riskEventSchema,
  riskyPrincipal: riskyPrincipalSchema,
  graphActivity: graphActivitySchema,
  agentsInfo: agentsInfoSchema,
};

interface FamilyValidator {
  /** True only when the record certainly passes (see `./precheck`); cheap, for the hot path. */
  precheck: (record: unknown) => boolean;
  /** The contract: decides every record the precheck is not sure about, and says why it fails. */
  validate: ValidateFunction;
}

let validators: Readonly<Record<RecordFamily, FamilyValidator>> | undefined;

function compileAll(): Readonly<Record<RecordFamily, FamilyValidator>> {
  // allErrors off: the first problem is enough for a dead letter and keeps the hot path short.
  const ajv = new Ajv({ allErrors: false, allowUnionTypes: true, strict: true, strictRequired: false });
  ajv.addSchema(envelopeSchema);
  const compiled = {} as Record<RecordFamily, FamilyValidator>;
  for (const [family, schema] of Object.entries(FAMILY_SCHEMAS) as [RecordFamily, object][]) {
    compiled[family] = { precheck: compilePrecheck(schema, [envelopeSchema]), validate: ajv.compile(schema) };
  }
  return compiled;
}

/** Validates a record against its family's schema: `undefined` when valid, else the reason. */
export function validateRecord(family: RecordFamily, record: unknown): string | undefined {
  validators ??= compileAll();
  const { precheck, validate } = validators[family];
  if (precheck(record) || validate(record)) return undefined;
  return describe(validate.errors);
}

/** The precheck alone, for the test that holds it to ajv's verdicts. */
export function precheckRecord(family: RecordFamily, record: unknown): boolean {
  validators ??= compileAll();
  return validators[family].precheck(record);
}

function describe(errors: ErrorObject[] | null | undefined): string {
  const first = errors?.[0];
  if (!first) return 'does not match its schema';
  const where = first.instancePath || '/';
  if (first.keyword === 'type') return `${where} must be ${String((first.params as { type?: unknown }).type).replace(/,/g, ' | ')}`;
  if (first.keyword === 'required') return `${where} is missing ${String((first.params as { missingProperty?: unknown }).missingProperty)}`;
  return `${where} ${first.message ?? 'is invalid'}`;
}
