// A consumer of the generated types (`schema.d.ts`, from openapi-typescript):
// `event.data` narrows by `event.type`, with no casts. Checked by
// scripts/check-typescript with `tsc --strict`.
import type { components } from "./schema.d.ts";

type Event = components["schemas"]["Event"];

export function describe(event: Event): string {
    switch (event.type) {
        case "prompt.submitted":
            return `${event.data.authorParticipantId} asks (${event.data.status}): ${event.data.text}`;
        case "agent.output":
            return event.data.kind === "message"
                ? (event.data.text ?? "")
                : `${event.data.kind} for ${event.data.promptId}`;
        case "agent.permission_requested": {
            const options = event.data.options.map((option) => `${option.name} (${option.kind})`);
            return `the agent asks before ${event.data.deadline}: ${options.join(", ")}`;
        }
        case "session.closed":
            return `closed: ${event.data.reason}${event.data.summary === null ? "" : ` (${event.data.summary})`}`;
        default:
            return `#${event.seq} ${event.type}`;
    }
}
