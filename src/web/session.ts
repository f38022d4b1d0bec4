/** Who is signed in, for every page: the /me answer, shared through a Preact context. */
import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import type { Action } from '../protocol/access-rules.ts';
import type { Me } from './api-types.ts';

/** The signed-in user's /me; the shell provides it to every page but the sign-in page. */
export const MeContext = createContext<Me | null>(null);

/** The signed-in user; pages under the shell always have one. */
export function useMe(): Me {
  const me = useContext(MeContext);
  if (me === null) throw new Error('useMe() outside the signed-in shell');
  return me;
}

/** Whether `me`'s roles grant relay action `action` (the relay decides again on every call). */
export function can(me: Me | null, action: Action): boolean {
  return me !== null && me.actions.includes(action);
}
