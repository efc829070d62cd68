// Reading fields of certificates that are not node certificates (the root CA's cluster).
import * as x509 from '@peculiar/x509';
import { PkiError } from './pki.js';

/** The cluster ID a root CA certificate was made for (its subject's O). */
export function x509ClusterId(caPem: string): string {
  const o = new x509.X509Certificate(caPem).subjectName.getField('O')[0];
  if (!o) throw new PkiError('the root CA certificate names no cluster (no O in its subject)');
  return o;
}
