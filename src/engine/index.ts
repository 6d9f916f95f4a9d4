/**
 * The evaluate stage: the rule language loader/compiler, the engine, the config file, and the
 * rule-test runner. Everything the pipeline, the CLI and the bench need, and nothing else.
 */
import type { ResponsePlan } from '../response/types';
import type { CompiledDetection } from './types';

export { loadDetections, readRuleSet, compileRuleSet, type LoadDetectionsOptions, type RuleSet, type RuleFile, type CompileSetOptions } from './load';
export { createEngine, Engine, getResponsePlan, DEFAULT_LATENESS_MS, DEFAULT_MARKER_TTL_MS } from './engine';
export { loadEngineConfig, parseEngineConfig, configProblems } from './config';
export { DEFAULT_LISTS } from './lists';
export { enginePartitions } from './stateSlots';
export { runRuleTests, listRuleTestCases, formatRuleTestReport, checkExpectations, type RuleTestReport, type RuleCaseResult, type RuleTestCase, type RuleTestOptions, type RecordsToEvents } from './testRunner';
export type { CompiledDetection, EngineOptions, EngineStats, EngineBatchResult, EngineConfig, ParameterValue, RuleStatus } from './types';

/**
 * The rules' `response:` blocks by detection id, unresolved (field names, not values): for a
 * responder that plans from the detection id alone (`ResponseConfig.plans`). Alerts raised by the
 * engine carry resolved plans too (`EngineBatchResult.responsePlans`, `getResponsePlan`).
 */
export function responsePlansByDetection(detections: readonly CompiledDetection[]): Record<string, ResponsePlan> {
  const plans: Record<string, ResponsePlan> = {};
  for (const detection of detections) {
    if (!detection.response) continue;
    plans[detection.id] = {
      mode: detection.response.mode,
      actions: detection.response.actions.map((action) => ({ action: action.action, target: action.target, ...(action.keyId ? { keyId: action.keyId } : {}) })),
    };
  }
  return plans;
}
