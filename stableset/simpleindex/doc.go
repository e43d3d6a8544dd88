// Package simpleindex renders a project's stable simple index pages: PEP
// 503 HTML and PEP 691 JSON listing exactly the files given
// (docs/index-pages.md).
//
// What it promises:
//
//   - The pages are byte-for-byte deterministic: they depend only on the
//     project and the set of files, not on their order, the machine or the
//     run.
//   - Invalid input (a bad project name, a duplicate or empty filename, a
//     URL that does not end in the filename, control characters) is
//     refused with a *PageError and nothing is rendered.
//   - PagePaths gives the target paths under simple/<project>/ that PEP
//     458 names for the pages.
//   - A Renderer gives RenderProjectPages' bytes, into buffers it keeps
//     from one project to the next.
package simpleindex
