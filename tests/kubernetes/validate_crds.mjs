// Validates the prometheus-operator objects of a rendered kustomization
// (render_and_validate.py's JSON) with @kubernetes-models/prometheus-operator:
// each object is type-checked by the TypeScript compiler against the model's
// interface (so an unknown or misspelt field is an error, as with kubectl's
// strict validation), then checked at run time by the model's schema
// validator (patterns, enums, required fields).
//
// Usage: node validate_crds.mjs RENDERED.json WORK_DIR
// Exit 1 with one line per problem ("FILE: KIND/NAME: message").
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const [rendered, work] = process.argv.slice(2);
const items = JSON.parse(readFileSync(rendered, "utf8")).filter((item) =>
  String(item.doc.apiVersion ?? "").startsWith("monitoring.coreos.com/"),
);
const problems = [];
const label = (item) => `${item.file}: ${item.doc.kind}/${item.doc.metadata?.name}`;

// Run-time validation, and the model module of each kind.
const typed = [];
for (const item of items) {
  const version = item.doc.apiVersion.split("/")[1];
  const module = `@kubernetes-models/prometheus-operator/monitoring.coreos.com/${version}/${item.doc.kind}`;
  let Model;
  try {
    Model = (await import(module))[item.doc.kind];
  } catch {
    problems.push(`${label(item)}: no prometheus-operator model for apiVersion ${item.doc.apiVersion} kind ${item.doc.kind} (wrong kind or apiVersion)`);
    continue;
  }
  try {
    new Model(item.doc).validate();
  } catch (error) {
    problems.push(`${label(item)}: ${error.message.split("\n").join(" ")}`);
  }
  typed.push({ item, module });
}

// Type-check: one annotated object literal per object, so excess properties are errors.
const lines = [];
typed.forEach(({ item, module }, index) => {
  lines.push(`// ${label(item)}`);
  lines.push(`import type { I${item.doc.kind} as T${index} } from "${module}";`);
  lines.push(`export const object${index}: T${index} = ${JSON.stringify(item.doc, null, 2)};`);
});
writeFileSync(join(work, "objects.ts"), lines.join("\n") + "\n");
writeFileSync(
  join(work, "tsconfig.json"),
  JSON.stringify({
    compilerOptions: { strict: true, noEmit: true, skipLibCheck: true, module: "nodenext", moduleResolution: "nodenext", target: "es2022" },
    files: ["objects.ts"],
  }),
);
if (typed.length > 0) {
  try {
    execFileSync(join(work, "node_modules", ".bin", "tsc"), ["-p", work], { cwd: work, encoding: "utf8" });
  } catch (error) {
    const source = readFileSync(join(work, "objects.ts"), "utf8").split("\n");
    for (const line of String(error.stdout).split("\n").filter((l) => l.includes("error TS"))) {
      // objects.ts(LINE,COL): error TSxxxx: message → the object it is in.
      const at = Number((line.match(/\((\d+),/) ?? [])[1] ?? 0);
      let header = "objects.ts";
      for (let i = at - 1; i >= 0; i--) {
        if (source[i].startsWith("// ")) {
          header = source[i].slice(3);
          break;
        }
      }
      problems.push(`${header}: line ${at} of the typed copy: ${line.replace(/^.*error TS\d+: /, "")}`);
    }
    if (problems.length === 0) problems.push(`tsc failed: ${error.stdout}${error.stderr}`);
  }
}
for (const problem of problems) console.log(problem);
process.exit(problems.length > 0 ? 1 : 0);
