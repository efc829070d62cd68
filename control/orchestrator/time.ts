// Objects carry ISO timestamps; the orchestrator reasons in epoch milliseconds given by the caller.
export function ms(iso: string | undefined): number {
  if (!iso) return 0;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? 0 : t;
}

export function iso(t: number): string {
  return new Date(t).toISOString();
}
