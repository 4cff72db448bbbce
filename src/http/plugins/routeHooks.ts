/** A route option's hooks as an array, whether it was given none, one or several. */
export function hookArray<T>(hooks: T | T[] | undefined): T[] {
  return hooks === undefined ? [] : Array.isArray(hooks) ? hooks : [hooks];
}
