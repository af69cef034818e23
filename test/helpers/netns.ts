// Test topologies: the shipped module engine/selftest/topology.ts, which `ebpfnet selftest`
// uses too (test/ is not shipped, so the code lives in the engine).
export * from '../../engine/selftest/topology.js';
